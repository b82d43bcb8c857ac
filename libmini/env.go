package libmini

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/containernetworking/cni/pkg/types"
)

// Commands are the values of CNI_COMMAND a plugin answers.
var Commands = []string{"ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"}

// envVars are the CNI variables besides CNI_COMMAND, in the spec's order.
var envVars = []string{"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"}

// requiredEnv is, per command, the variables that must be set: skel's table
// (the spec's, with CNI_PATH required for every verb but VERSION), so a
// configuration skel would refuse is refused here first, in words that name
// the variable. (A switch, not a map: a map literal is built at every
// plugin start.)
func requiredEnv(cmd string) []string {
	switch cmd {
	case "ADD", "CHECK":
		return []string{"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"}
	case "DEL":
		return []string{"CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"}
	case "GC", "STATUS":
		return []string{"CNI_PATH"}
	}
	return nil
}

// invokedByRuntime reports whether any CNI variable is set: a runtime that
// forgot CNI_COMMAND gets error 4, while a person running the binary by hand,
// without any, gets the about text.
func invokedByRuntime(getenv func(string) string) bool {
	return getenv("CNI_COMMAND") != "" || slices.ContainsFunc(envVars, func(v string) bool { return getenv(v) != "" })
}

// CheckEnv checks the CNI variables of one invocation and returns a CNI
// error 4 whose msg names the offending variable, or nil. It checks what
// skel checks (the command, the variables each command needs, CNI_IFNAME
// and CNI_CONTAINERID's syntax) and more: CNI_ARGS's KEY=VALUE syntax, and
// that CNI_NETNS is not the plugin's own namespace on ADD and DEL (skel only
// looks at that after the verb has run).
func CheckEnv(getenv func(string) string) error {
	cmd := getenv("CNI_COMMAND")
	if cmd == "" {
		return types.NewError(CodeInvalidEnv, "CNI_COMMAND is not set",
			"want one of "+strings.Join(Commands, ", "))
	}
	if !slices.Contains(Commands, cmd) {
		return types.NewError(CodeInvalidEnv, fmt.Sprintf("unknown CNI_COMMAND %q", cmd),
			"want one of "+strings.Join(Commands, ", "))
	}
	var missing []string
	for _, v := range requiredEnv(cmd) {
		if getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return types.NewError(CodeInvalidEnv, "required environment variables not set: "+strings.Join(missing, ", "),
			fmt.Sprintf("CNI_COMMAND=%s needs %s", cmd, strings.Join(requiredEnv(cmd), ", ")))
	}
	switch cmd {
	case "ADD", "CHECK", "DEL":
		if err := ValidateEnvContainerID(getenv("CNI_CONTAINERID")); err != nil {
			return err
		}
		if err := ValidateEnvIfName(getenv("CNI_IFNAME")); err != nil {
			return err
		}
	}
	if err := ValidateEnvArgs(getenv("CNI_ARGS")); err != nil {
		return err
	}
	if cmd == "ADD" || cmd == "DEL" {
		override := strings.ToUpper(getenv("CNI_NETNS_OVERRIDE"))
		if p := getenv("CNI_NETNS"); p != "" && override != "TRUE" && override != "1" && ownNetNS(p) {
			return types.NewError(CodeInvalidEnv, fmt.Sprintf("CNI_NETNS %q is the plugin's own network namespace", p),
				"the runtime runs a plugin in the node's namespace and names the pod's in CNI_NETNS")
		}
	}
	return nil
}

// ownNetNS reports whether path is the network namespace of the calling
// thread. A path that cannot be read is not: the plugin reports it when it
// opens it.
func ownNetNS(path string) bool {
	pod, err := os.Stat(path)
	if err != nil {
		return false
	}
	self, err := os.Stat("/proc/thread-self/ns/net")
	return err == nil && os.SameFile(pod, self)
}

// ValidateEnvContainerID checks CNI_CONTAINERID against the spec's syntax:
// not empty, a letter or digit, then letters, digits, '_', '.' or '-'.
func ValidateEnvContainerID(id string) error {
	if id == "" {
		return types.NewError(CodeInvalidEnv, "CNI_CONTAINERID is empty", "a container ID must not be empty")
	}
	if !validName(id) {
		return types.NewError(CodeInvalidEnv, fmt.Sprintf("invalid CNI_CONTAINERID %q", id),
			"a container ID starts with a letter or digit, followed by letters, digits, '_', '.' or '-'")
	}
	return nil
}

// ValidateEnvIfName checks CNI_IFNAME as an interface name (see
// ValidateIfName).
func ValidateEnvIfName(name string) error {
	if p := ifNameProblem(name); p != "" {
		return types.NewError(CodeInvalidEnv, fmt.Sprintf("invalid CNI_IFNAME %q", name), "the interface name "+p)
	}
	return nil
}

// ValidateEnvArgs checks CNI_ARGS's syntax: KEY=VALUE pairs separated by
// ';' (empty pairs are skipped). What a key means is the plugin's business.
func ValidateEnvArgs(args string) error {
	for pair := range strings.SplitSeq(args, ";") {
		if pair == "" {
			continue
		}
		if k, _, ok := strings.Cut(pair, "="); !ok || k == "" {
			return types.NewError(CodeInvalidEnv, fmt.Sprintf("invalid CNI_ARGS %q", args),
				fmt.Sprintf("pair %q is not KEY=VALUE", pair))
		}
	}
	return nil
}

// ifNameProblem says what is wrong with a Linux interface name, or "": 1–15
// bytes (IFNAMSIZ), not "." or "..", no '/', ':', NUL or whitespace.
func ifNameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 15:
		return fmt.Sprintf("is %d bytes long, the kernel allows at most 15", len(name))
	case name == "." || name == "..":
		return "is not a valid interface name"
	case strings.IndexFunc(name, func(r rune) bool { return r == '/' || r == ':' || r == 0 || unicode.IsSpace(r) }) >= 0:
		return "contains '/', ':' or whitespace"
	}
	return ""
}
