package minitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/libmini"
)

// BadInput is one invocation a plugin must refuse: with the spec's whole
// error object on stdout, exit status 1, and nothing changed on the node,
// in the pod or in the data directory.
type BadInput struct {
	Name string
	// Conf returns the config on stdin; nil means the harness's Good one.
	Conf func(r *Run) string
	// Cmd is CNI_COMMAND (ADD when empty).
	Cmd string
	// Env changes the environment of the run, which holds CNI_COMMAND,
	// CNI_CONTAINERID, CNI_NETNS (the pod), CNI_IFNAME (eth0), CNI_PATH
	// (the binary's directory) and PATH; an empty value unsets a variable.
	Env func(r *Run, env map[string]string)
	// Prepare changes the node or the pod before the "before" snapshot.
	Prepare func(t *testing.T, r *Run)
	// Versions selects the CNI versions to run in; nil means every one.
	Versions func(ver string) bool
	// Code is the error code; for 4, Var is the variable msg must name.
	Code uint
	Var  string
	// Mention lists strings msg or details must contain.
	Mention []string
	// Fallback: the config's version cannot be used (unreadable or
	// unsupported), so the error carries libmini.NewestVersion.
	Fallback bool
	// Infra names what a failed ADD may leave behind because it is node
	// infrastructure made before the failure, shared by every pod: node
	// links (minibridge's bridge), with their addresses and routes, and
	// paths under DataDir (an IPAM's lock file, "net/" for a directory).
	// Nothing else may change.
	Infra []string
}

// Run is one execution of a BadInput: a CNI version and fresh namespaces
// and data directory, all removed when the test ends.
type Run struct {
	T         *testing.T
	Ver       string
	Host, Pod ns.NetNS // the binary runs in Host; CNI_NETNS is Pod
	DataDir   string   // a t.TempDir() for the plugin's state
	ID        string   // CNI_CONTAINERID
	good      func(r *Run) string
	bin       string
}

// Good is the harness's valid config in r.Ver.
func (r *Run) Good() string { return r.good(r) }

// Edit returns the Good config with f applied to it as a JSON object.
func (r *Run) Edit(f func(m map[string]any)) string {
	r.T.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Good()), &m); err != nil {
		r.T.Fatalf("good config: %v", err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		r.T.Fatal(err)
	}
	return string(b)
}

// SetEnv is a BadInput.Env that sets variables to fixed values: SetEnv("CNI_IFNAME", "eth/0").
func SetEnv(kv ...string) func(*Run, map[string]string) {
	return func(_ *Run, env map[string]string) {
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
	}
}

// Harness runs BadInputs against one plugin binary.
type Harness struct {
	Bin string // path of the plugin binary; its directory is CNI_PATH
	// Good returns a valid config for the plugin in r.Ver (state under
	// r.DataDir).
	Good func(r *Run) string
	// Env adds variables to every run (for example for fake plugins).
	Env func(r *Run) map[string]string
	// Cleanup runs when a run ends, before its namespaces go.
	Cleanup func(r *Run)
}

// EnvVars are the variables a code-4 error may name.
var EnvVars = []string{"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"}

// Check runs every case in every CNI version it selects, each as a parallel
// subtest in fresh namespaces, and checks the error object and that nothing
// changed. It skips when not root.
func (h Harness) Check(t *testing.T, cases []BadInput) {
	t.Helper()
	RequireRoot(t)
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.Name] {
			t.Fatalf("two cases named %q", c.Name)
		}
		names[c.Name] = true
		if c.Code == libmini.CodeInvalidEnv && !slices.Contains(EnvVars, c.Var) {
			t.Fatalf("case %q: code 4 needs Var, one of %v", c.Name, EnvVars)
		}
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			for _, ver := range Versions {
				if c.Versions != nil && !c.Versions(ver) {
					continue
				}
				t.Run("cni-"+ver, func(t *testing.T) {
					t.Parallel()
					h.run(t, c, ver)
				})
			}
		})
	}
}

func (h Harness) run(t *testing.T, c BadInput, ver string) {
	r := &Run{T: t, Ver: ver, Host: NewNS(t), Pod: NewNS(t), DataDir: t.TempDir(), ID: Name("ctr"), good: h.Good, bin: h.Bin}
	if h.Cleanup != nil {
		t.Cleanup(func() { h.Cleanup(r) })
	}
	if c.Prepare != nil {
		c.Prepare(t, r)
	}
	stdin := r.Good()
	if c.Conf != nil {
		stdin = c.Conf(r)
	}
	cmd := c.Cmd
	if cmd == "" {
		cmd = "ADD"
	}
	env := map[string]string{
		"CNI_COMMAND": cmd, "CNI_CONTAINERID": r.ID, "CNI_NETNS": r.Pod.Path(), "CNI_IFNAME": "eth0",
		"CNI_PATH": filepath.Dir(h.Bin), "PATH": os.Getenv("PATH"),
	}
	if h.Env != nil {
		maps.Copy(env, h.Env(r))
	}
	if c.Env != nil {
		c.Env(r, env)
	}

	before := snapshot(t, r)
	stdout, stderr, exit := r.exec(env, stdin)
	after := snapshot(t, r)

	describe := fmt.Sprintf("%s with %s\nstdin: %s\nexit %d\nstdout: %s\nstderr: %s", cmd, envString(env), stdin, exit, stdout, stderr)
	want := ver
	if c.Fallback {
		want = libmini.NewestVersion()
	}
	for _, p := range ErrorObjectProblems(c, want, exit, stdout) {
		t.Errorf("%s\n%s", p, describe)
	}
	for _, name := range c.Infra {
		before.drop(name)
		after.drop(name)
	}
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("the failed %s changed the node, the pod or the data dir (-before +after):\n%s\n%s", cmd, d, describe)
	}
}

// exec runs the binary from a thread inside r.Host, as a runtime on that
// node would (the child inherits the thread's netns), with exactly env.
func (r *Run) exec(env map[string]string, stdin string) (stdout, stderr []byte, exit int) {
	r.T.Helper()
	var out, errOut bytes.Buffer
	var runErr error
	Do(r.T, r.Host, func() error {
		cmd := exec.Command(r.bin)
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if env[k] != "" {
				cmd.Env = append(cmd.Env, k+"="+env[k])
			}
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
		runErr = cmd.Run()
		return nil
	})
	if ee, ok := runErr.(*exec.ExitError); ok {
		exit = ee.ExitCode()
	} else if runErr != nil {
		r.T.Fatalf("running %s: %v", r.bin, runErr)
	}
	return out.Bytes(), errOut.Bytes(), exit
}

func envString(env map[string]string) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k != "PATH" {
			kv = append(kv, fmt.Sprintf("%s=%q", k, env[k]))
		}
	}
	return strings.Join(kv, " ")
}

// ErrorObjectProblems says what is wrong with a refused command's outcome:
// it must exit 1 and print exactly the spec's error object, with the four
// keys, cniVersion want, c's code and mentions, the variable named in msg
// for code 4, and details non-empty for the protocol errors (1, 4 and 6:
// libmini builds them and always says more). None means it is right.
func ErrorObjectProblems(c BadInput, want string, exit int, stdout []byte) []string {
	var p []string
	if exit != 1 {
		p = append(p, fmt.Sprintf("exit status %d, want 1", exit))
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(stdout, &keys); err != nil {
		return append(p, fmt.Sprintf("stdout is not one JSON object: %v", err))
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"cniVersion", "code", "details", "msg"}) {
		p = append(p, fmt.Sprintf("error object keys %v, want cniVersion, code, msg, details", got))
	}
	var e libmini.ErrorObject
	if err := json.Unmarshal(stdout, &e); err != nil {
		return append(p, fmt.Sprintf("error object does not decode: %v", err))
	}
	if e.CNIVersion != want {
		p = append(p, fmt.Sprintf("cniVersion %q, want %q", e.CNIVersion, want))
	}
	if e.Code != c.Code {
		p = append(p, fmt.Sprintf("code %d, want %d", e.Code, c.Code))
	}
	if e.Msg == "" {
		p = append(p, "empty msg")
	}
	if c.Code == libmini.CodeInvalidEnv && !strings.Contains(e.Msg, c.Var) {
		p = append(p, fmt.Sprintf("msg %q does not name %s", e.Msg, c.Var))
	}
	if (e.Code == libmini.CodeIncompatibleVersion || e.Code == libmini.CodeInvalidEnv || e.Code == libmini.CodeDecode) && e.Details == "" {
		p = append(p, fmt.Sprintf("code %d with empty details", e.Code))
	}
	for _, m := range c.Mention {
		if !strings.Contains(e.Msg+" "+e.Details, m) {
			p = append(p, fmt.Sprintf("msg %q and details %q do not mention %q", e.Msg, e.Details, m))
		}
	}
	return p
}
