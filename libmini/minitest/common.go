package minitest

import (
	"slices"

	"github.com/minicni/minicni/libmini"
)

// Before returns a BadInput.Versions that selects the versions older than v.
func Before(v string) func(string) bool {
	return func(ver string) bool { return slices.Index(Versions, ver) < slices.Index(Versions, v) }
}

// CommonBadInputs are the invocations every minicni plugin refuses the same
// way, because libmini.PluginMain refuses them before the verb runs: a
// broken environment, stdin or version. Each plugin's test runs them with
// its own Good config, beside its own cases.
func CommonBadInputs() []BadInput {
	raw := func(s string) func(*Run) string { return func(*Run) string { return s } }
	set := func(k string, v any) func(*Run) string {
		return func(r *Run) string { return r.Edit(func(m map[string]any) { m[k] = v }) }
	}
	return []BadInput{
		// stdin
		{Name: "empty stdin", Conf: raw(""), Code: libmini.CodeDecode, Fallback: true, Mention: []string{"stdin"}},
		{Name: "bad JSON", Conf: func(r *Run) string { return `{"cniVersion":"` + r.Ver + `","name":` }, Code: libmini.CodeDecode, Fallback: true},
		{Name: "JSON array", Conf: raw(`[{"cniVersion":"1.0.0"}]`), Code: libmini.CodeDecode, Fallback: true, Mention: []string{"array"}},
		{Name: "cniVersion a number", Conf: set("cniVersion", 1), Code: libmini.CodeDecode, Fallback: true},
		{Name: "cniVersion 9.9.9", Conf: set("cniVersion", "9.9.9"), Code: libmini.CodeIncompatibleVersion, Fallback: true, Mention: []string{"9.9.9", "1.1.0"}},
		{Name: "no network name", Conf: func(r *Run) string { return r.Edit(func(m map[string]any) { delete(m, "name") }) },
			Code: libmini.CodeInvalidConfig, Mention: []string{"name"}},
		{Name: "network name ../x", Conf: set("name", "../x"), Code: libmini.CodeInvalidConfig, Mention: []string{"../x"}},
		// CNI_COMMAND
		{Name: "CNI_COMMAND not set", Env: SetEnv("CNI_COMMAND", ""), Code: libmini.CodeInvalidEnv, Var: "CNI_COMMAND"},
		{Name: "CNI_COMMAND unknown", Cmd: "FROB", Code: libmini.CodeInvalidEnv, Var: "CNI_COMMAND", Mention: []string{"FROB"}},
		{Name: "CNI_COMMAND unknown, stdin empty", Cmd: "FROB", Conf: raw(""), Code: libmini.CodeInvalidEnv, Var: "CNI_COMMAND", Fallback: true},
		{Name: "CNI_COMMAND not set, stdin bad JSON", Env: SetEnv("CNI_COMMAND", ""), Conf: raw(`{"cniVersion":`),
			Code: libmini.CodeInvalidEnv, Var: "CNI_COMMAND", Fallback: true},
		// the variables each verb needs
		{Name: "CNI_CONTAINERID not set", Env: SetEnv("CNI_CONTAINERID", ""), Code: libmini.CodeInvalidEnv, Var: "CNI_CONTAINERID"},
		{Name: "CNI_CONTAINERID not set on DEL", Cmd: "DEL", Env: SetEnv("CNI_CONTAINERID", ""), Code: libmini.CodeInvalidEnv, Var: "CNI_CONTAINERID"},
		{Name: "CNI_NETNS not set", Env: SetEnv("CNI_NETNS", ""), Code: libmini.CodeInvalidEnv, Var: "CNI_NETNS"},
		{Name: "CNI_IFNAME not set", Env: SetEnv("CNI_IFNAME", ""), Code: libmini.CodeInvalidEnv, Var: "CNI_IFNAME"},
		{Name: "CNI_PATH not set", Env: SetEnv("CNI_PATH", ""), Code: libmini.CodeInvalidEnv, Var: "CNI_PATH"},
		{Name: "CNI_PATH not set on STATUS", Cmd: "STATUS", Env: SetEnv("CNI_PATH", ""), Versions: From("1.1.0"),
			Code: libmini.CodeInvalidEnv, Var: "CNI_PATH"},
		// the variables' values
		{Name: "CNI_CONTAINERID ../c1", Env: SetEnv("CNI_CONTAINERID", "../c1"), Code: libmini.CodeInvalidEnv, Var: "CNI_CONTAINERID", Mention: []string{"../c1"}},
		{Name: "CNI_CONTAINERID -c1 on DEL", Cmd: "DEL", Env: SetEnv("CNI_CONTAINERID", "-c1"), Code: libmini.CodeInvalidEnv, Var: "CNI_CONTAINERID", Mention: []string{"-c1"}},
		{Name: "CNI_IFNAME of 16 bytes", Env: SetEnv("CNI_IFNAME", "eth0123456789abc"), Code: libmini.CodeInvalidEnv, Var: "CNI_IFNAME", Mention: []string{"eth0123456789abc", "16 bytes"}},
		{Name: "CNI_IFNAME eth/0 on DEL", Cmd: "DEL", Env: SetEnv("CNI_IFNAME", "eth/0"), Code: libmini.CodeInvalidEnv, Var: "CNI_IFNAME", Mention: []string{"eth/0"}},
		{Name: "CNI_IFNAME dot", Env: SetEnv("CNI_IFNAME", "."), Code: libmini.CodeInvalidEnv, Var: "CNI_IFNAME"},
		{Name: "CNI_IFNAME with a space", Env: SetEnv("CNI_IFNAME", "eth 0"), Code: libmini.CodeInvalidEnv, Var: "CNI_IFNAME"},
		{Name: "CNI_ARGS not KEY=VALUE", Env: SetEnv("CNI_ARGS", "IgnoreUnknown=1;garbage"), Code: libmini.CodeInvalidEnv, Var: "CNI_ARGS", Mention: []string{"garbage"}},
		{Name: "CNI_ARGS empty key", Cmd: "DEL", Env: SetEnv("CNI_ARGS", "=1"), Code: libmini.CodeInvalidEnv, Var: "CNI_ARGS"},
		{Name: "CNI_NETNS the plugin's own", Env: func(r *Run, env map[string]string) { env["CNI_NETNS"] = r.Host.Path() },
			Code: libmini.CodeInvalidEnv, Var: "CNI_NETNS"},
		{Name: "CNI_NETNS the plugin's own on DEL", Cmd: "DEL", Env: func(r *Run, env map[string]string) { env["CNI_NETNS"] = r.Host.Path() },
			Code: libmini.CodeInvalidEnv, Var: "CNI_NETNS"},
		// verbs the config's version lacks
		{Name: "CHECK before 0.4.0", Cmd: "CHECK", Versions: Before("0.4.0"), Code: libmini.CodeIncompatibleVersion, Mention: []string{"CHECK", "0.4.0"}},
		{Name: "GC before 1.1.0", Cmd: "GC", Versions: Before("1.1.0"), Code: libmini.CodeIncompatibleVersion, Mention: []string{"GC", "1.1.0"}},
		{Name: "STATUS before 1.1.0", Cmd: "STATUS", Versions: Before("1.1.0"), Code: libmini.CodeIncompatibleVersion, Mention: []string{"STATUS", "1.1.0"}},
	}
}

// From returns a BadInput.Versions that selects v and the versions after it.
func From(v string) func(string) bool {
	b := Before(v)
	return func(ver string) bool { return !b(ver) }
}
