package libmini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	cniversion "github.com/containernetworking/cni/pkg/version"
)

// PluginMain is every minicni plugin's main. It checks the CNI variables
// (CheckEnv) and the config's cniVersion (CheckConf) itself, runs the verb
// with skel, and prints any failure, its own or a verb's, as the spec's
// error object (ErrorObject: cniVersion, code, msg, details) on stdout, then
// exits 1. Run by hand without any CNI variable, the plugin prints about on
// stderr and exits 0 (skel's behaviour); a runtime that forgot CNI_COMMAND
// gets error 4 instead.
func PluginMain(funcs skel.CNIFuncs, about string) {
	if e, ver := pluginMain(funcs, about); e != nil {
		if err := PrintError(os.Stdout, e, ver); err != nil {
			fmt.Fprintln(os.Stderr, "writing the error object:", err)
		}
		os.Exit(1)
	}
}

// pluginMain returns the error to print and the version to print it in.
func pluginMain(funcs skel.CNIFuncs, about string) (*types.Error, string) {
	cmd := os.Getenv("CNI_COMMAND")
	if cmd == "VERSION" || !invokedByRuntime(os.Getenv) {
		// skel prints the version info, or the about text; neither reads
		// stdin, which may be a terminal.
		return skel.PluginMainFuncsWithError(funcs, Versions, about), NewestVersion()
	}
	envErr := CheckEnv(os.Getenv)
	if envErr != nil && stdinIsTerminal() {
		// Nobody will type a config: answer now, in the newest version.
		return asCNIError(envErr), NewestVersion()
	}
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		return types.NewError(CodeIOFailure, "cannot read the network configuration from stdin", err.Error()), NewestVersion()
	}
	ver, confErr := CheckConf(cmd, stdin)
	if envErr != nil {
		return asCNIError(envErr), ver
	}
	if confErr != nil {
		return asCNIError(confErr), ver
	}
	// skel reads os.Stdin itself: hand it what was read.
	r, w, err := os.Pipe()
	if err != nil {
		return types.NewError(CodeIOFailure, "cannot pass the network configuration on", err.Error()), ver
	}
	if len(stdin) <= pipeBuf {
		// The pipe holds it all: no goroutine (whose start would wake a
		// second thread in every plugin process).
		_, _ = w.Write(stdin)
		_ = w.Close()
	} else {
		go func() {
			_, _ = w.Write(stdin)
			_ = w.Close()
		}()
	}
	os.Stdin = r
	return skel.PluginMainFuncsWithError(funcs, Versions, about), ver
}

// pipeBuf is what a pipe holds before a write blocks: Linux's minimum pipe
// capacity, one page (the default is 16 pages).
const pipeBuf = 4096

// stdinIsTerminal reports whether stdin is a character device: a terminal
// (or /dev/null, where nothing is lost by not reading it).
func stdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
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

// minVersion is the first CNI version in which a command exists.
var minVersion = map[string]string{"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}

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
	if min, ok := minVersion[cmd]; ok {
		if older, err := cniversion.GreaterThan(min, ver); err == nil && older {
			return ver, types.NewError(CodeIncompatibleVersion, fmt.Sprintf("CNI_COMMAND %s is not part of cniVersion %s", cmd, ver),
				fmt.Sprintf("%s exists from CNI %s on", cmd, min))
		}
	}
	// skel's own check of the name, with details.
	if head.Name == "" {
		return ver, types.NewError(CodeInvalidConfig, "missing network name", `the network configuration has no "name"`)
	}
	if !nameRE.MatchString(head.Name) {
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

// asCNIError is err as a *types.Error; anything else is skel's code 999.
func asCNIError(err error) *types.Error {
	if e, ok := AsCNIError(err); ok {
		return e
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}
