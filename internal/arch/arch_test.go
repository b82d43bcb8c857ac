package arch

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/minicni/minicni/"

// rule forbids the packages at or below from (module-relative; "" is every
// package) to import, outside their tests, a package at or below one of
// deny, unless it is at or below one of allow.
type rule struct {
	why   string
	from  string
	deny  []string
	allow []string
}

var rules = []rule{
	{why: "libmini touches no kernel and knows no plugin", from: "libmini",
		deny:  []string{"github.com/vishvananda/netlink", "github.com/coreos/go-iptables", module},
		allow: []string{module + "libmini"}},
	{why: "the rule model is pure: no exec, no netlink, no files", from: "plugins/miniroute/rules",
		deny:  []string{module, "os/exec", "github.com/vishvananda/", "os"},
		allow: []string{module + "internal/sum256"}},
	{why: "the backend and the stamps know the model, not each other or the plugin", from: "plugins/miniroute/backend",
		deny: []string{module + "plugins/miniroute/stamps", module + "plugins/miniroute/route"}},
	{why: "the backend and the stamps know the model, not each other or the plugin", from: "plugins/miniroute/stamps",
		deny: []string{module + "plugins/miniroute/backend", module + "plugins/miniroute/route"}},
	{why: "plugins do not know each other", from: "plugins/minibridge",
		deny: []string{module + "plugins/miniroute"}},
	{why: "plugins do not know each other", from: "plugins/miniroute",
		deny: []string{module + "plugins/minibridge", module + "ipam/"}},
	{why: "the IPAM is usable alone", from: "ipam/",
		deny: []string{module + "plugins/", module + "installer"}},
	{why: "minicni status only reads: its --fix goes through the plugins' GC code, not the installer's writers", from: "installer/nodestatus",
		deny: []string{module + "installer/install", module + "installer/uninstall", module + "installer/agent"}},
	{why: "a command under cmd/ is a thin main over its logic package", from: "cmd/",
		deny: []string{module + "plugins/", module + "ipam/"}},
	{why: "shipped code does not depend on tests or the lab", from: "",
		deny: []string{module + "integration", module + "libmini/minitest", module + "bench"}},
}

// exempt lists the packages that are test harnesses themselves.
var exempt = []string{"integration", "bench", "libmini/minitest", "installer/internal/twonode", "installer/internal/scale", "internal/arch"}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, imports, _ := strings.Cut(line, "|")
		rel := strings.TrimPrefix(path, module)
		if matchesAny(rel, exempt) {
			continue
		}
		checked++
		for _, r := range rules {
			if r.from != "" && !matches(rel, r.from) {
				continue
			}
			for _, imp := range strings.Split(imports, ",") {
				if imp != "" && matchesAny(imp, r.deny) && !matchesAny(imp, r.allow) {
					t.Errorf("%s imports %s: %s", rel, imp, r.why)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d packages checked: is the module path right?", checked)
	}
}

// matches reports whether path is p or below it; a p ending in "/" is a
// plain prefix.
func matches(path, p string) bool {
	if strings.HasSuffix(p, "/") {
		return strings.HasPrefix(path, p)
	}
	return path == p || strings.HasPrefix(path, p+"/")
}

func matchesAny(path string, ps []string) bool {
	for _, p := range ps {
		if matches(path, p) {
			return true
		}
	}
	return false
}
