package libmini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	cniversion "github.com/containernetworking/cni/pkg/version"
)

// CmdArgs is one invocation of a plugin: the CNI variables and the network
// configuration read from stdin. It has the fields of the CNI library's
// skel.CmdArgs, so code written against either reads the same; minicni's
// plugins dispatch themselves (PluginMain) and do not link skel, whose
// package initialisation (compiled regular expressions, unicode tables) every
// start of a plugin would pay.
type CmdArgs struct {
	ContainerID   string // CNI_CONTAINERID
	Netns         string // CNI_NETNS (empty on a DEL once the namespace is gone)
	IfName        string // CNI_IFNAME
	Args          string // CNI_ARGS
	Path          string // CNI_PATH
	NetnsOverride string // CNI_NETNS_OVERRIDE
	StdinData     []byte // the network configuration
}

// Verbs are a plugin's commands. VERSION is PluginMain's own; a verb left nil
// is refused with error 4.
type Verbs struct {
	Add, Check, Del, GC, Status func(*CmdArgs) error
}

// PluginMain is every minicni plugin's main. It checks the CNI variables
// (CheckEnv) and the config's cniVersion (CheckConf), runs the verb, and
// prints any failure, its own or a verb's, as the spec's error object
// (ErrorObject: cniVersion, code, msg, details) on stdout, then exits 1.
// CNI_COMMAND=VERSION prints the supported versions and reads nothing. Run by
// hand without any CNI variable, the plugin prints about on stderr and exits
// 0; a runtime that forgot CNI_COMMAND gets error 4 instead.
func PluginMain(verbs Verbs, about string) {
	if e, ver := pluginMain(verbs, about, os.Getenv, os.Stdin, os.Stdout, os.Stderr); e != nil {
		if err := PrintError(os.Stdout, e, ver); err != nil {
			fmt.Fprintln(os.Stderr, "writing the error object:", err)
		}
		os.Exit(1)
	}
}

// pluginMain returns the error to print and the version to print it in.
func pluginMain(verbs Verbs, about string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (*types.Error, string) {
	cmd := getenv("CNI_COMMAND")
	if !invokedByRuntime(getenv) {
		fmt.Fprintln(stderr, about)
		fmt.Fprintf(stderr, "CNI protocol versions supported: %s\n", strings.Join(Versions.SupportedVersions(), ", "))
		return nil, ""
	}
	if cmd == "VERSION" {
		// Neither stdin nor any other variable matters.
		if err := encodeVersions(stdout); err != nil {
			return types.NewError(CodeIOFailure, "cannot write the version information", err.Error()), NewestVersion()
		}
		return nil, ""
	}
	envErr := CheckEnv(getenv)
	if envErr != nil && stdinIsTerminal(stdin) {
		// Nobody will type a config: answer now, in the newest version.
		return asCNIError(envErr), NewestVersion()
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return types.NewError(CodeIOFailure, "cannot read the network configuration from stdin", err.Error()), NewestVersion()
	}
	ver, confErr := CheckConf(cmd, data)
	if envErr != nil {
		return asCNIError(envErr), ver
	}
	if confErr != nil {
		return asCNIError(confErr), ver
	}
	var verb func(*CmdArgs) error
	switch cmd {
	case "ADD":
		verb = verbs.Add
	case "CHECK":
		verb = verbs.Check
	case "DEL":
		verb = verbs.Del
	case "GC":
		verb = verbs.GC
	case "STATUS":
		verb = verbs.Status
	}
	if verb == nil {
		return types.NewError(CodeInvalidEnv, fmt.Sprintf("CNI_COMMAND %s is not implemented by this plugin", cmd), ""), ver
	}
	InitPlugin()
	if err := verb(&CmdArgs{
		ContainerID:   getenv("CNI_CONTAINERID"),
		Netns:         getenv("CNI_NETNS"),
		IfName:        getenv("CNI_IFNAME"),
		Args:          getenv("CNI_ARGS"),
		Path:          getenv("CNI_PATH"),
		NetnsOverride: getenv("CNI_NETNS_OVERRIDE"),
		StdinData:     data,
	}); err != nil {
		return asCNIError(err), ver
	}
	return nil, ""
}

// stdinIsTerminal reports whether stdin is a character device: a terminal
// (or /dev/null, where nothing is lost by not reading it).
func stdinIsTerminal(stdin io.Reader) bool {
	f, ok := stdin.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// NewestVersion is the newest CNI version the plugins support (1.1.0): the
// version of an error object when the config's cannot be used.
func NewestVersion() string {
	v := Versions.SupportedVersions()
	newest := v[0]
	for _, x := range v[1:] {
		if ok, err := cniversion.GreaterThan(x, newest); err == nil && ok {
			newest = x
		}
	}
	return newest
}

// minVersion is the first CNI version in which a command exists, or "".
func minVersion(cmd string) string {
	switch cmd {
	case "CHECK":
		return "0.4.0"
	case "GC", "STATUS":
		return "1.1.0"
	}
	return ""
}

// CheckConf reads the cniVersion of stdin, the network configuration of
// command cmd. It returns the version an error object must carry (the
// config's when it is readable and supported, an absent one meaning 0.1.0 as
// in the spec; else NewestVersion) and an error: 6 for an empty stdin or one
// that is not a JSON object with a string cniVersion, 1 for a version the
// plugins do not support or one that predates cmd, 7 for a missing or
// malformed network name (what skel checks; a plugin's LoadConf checks the
// rest).
func CheckConf(cmd string, stdin []byte) (string, error) {
	newest := NewestVersion()
	if len(bytes.TrimSpace(stdin)) == 0 {
		return newest, types.NewError(CodeDecode, "no network configuration on stdin",
			"the runtime must pass the network configuration as JSON on stdin")
	}
	var head struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
	}
	if err := json.Unmarshal(stdin, &head); err != nil {
		return newest, types.NewError(CodeDecode, "failed to decode the network configuration", err.Error())
	}
	ver := head.CNIVersion
	if ver == "" {
		ver = "0.1.0"
	}
	if err := ValidateVersion(ver); err != nil {
		return newest, err
	}
	if min := minVersion(cmd); min != "" {
		if older, err := cniversion.GreaterThan(min, ver); err == nil && older {
			return ver, types.NewError(CodeIncompatibleVersion, fmt.Sprintf("CNI_COMMAND %s is not part of cniVersion %s", cmd, ver),
				fmt.Sprintf("%s exists from CNI %s on", cmd, min))
		}
	}
	// The name check the CNI library's skel makes, with details.
	if head.Name == "" {
		return ver, types.NewError(CodeInvalidConfig, "missing network name", `the network configuration has no "name"`)
	}
	if !validName(head.Name) {
		return ver, types.NewError(CodeInvalidConfig, fmt.Sprintf("invalid network name %q", head.Name),
			"a network name starts with a letter or digit, followed by letters, digits, '_', '.' or '-'")
	}
	return ver, nil
}

// ErrorObject is the spec's error object. Unlike types.Error it carries
// cniVersion, and details even when empty.
type ErrorObject struct {
	CNIVersion string `json:"cniVersion"`
	Code       uint   `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details"`
}

// PrintError writes e as an error object of version ver to w, indented as
// types.PrintResult indents a result.
func PrintError(w io.Writer, e *types.Error, ver string) error {
	b, err := json.MarshalIndent(ErrorObject{CNIVersion: ver, Code: e.Code, Msg: e.Msg, Details: e.Details}, "", "    ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// asCNIError is err as a *types.Error; anything else is code 999 (internal),
// as the CNI library's skel answers.
func asCNIError(err error) *types.Error {
	if e, ok := AsCNIError(err); ok {
		return e
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}
