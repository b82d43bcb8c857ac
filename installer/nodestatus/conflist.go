package nodestatus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/minicni/minicni/installer/conflist"
	ipamconfig "github.com/minicni/minicni/ipam/miniipam/config"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/minicni/minicni/plugins/miniroute/route"
)

// Conflist is the network configuration the runtime uses: the first file of
// the conf dir in libcni's order, as the kubelet's runtime picks it.
type Conflist struct {
	Dir  string `json:"dir"`
	Path string `json:"path,omitempty"` // empty: none
	// Name is the network's name; Types its plugins' and IPAMs' types.
	Name  string   `json:"name,omitempty"`
	Types []string `json:"types,omitempty"`
	// Minicni says whether it runs minibridge. Valid says whether libcni
	// and every plugin's LoadConf accept it (Error says why not).
	Minicni bool   `json:"minicni"`
	Valid   bool   `json:"valid"`
	Error   string `json:"error,omitempty"`
	// Others are the files after it, which the runtime does not use.
	Others []string `json:"others,omitempty"`
}

// network is the minicni network the other sections look at, parsed by the
// plugins' own LoadConf.
type network struct {
	name     string
	types    []string
	bridge   *bridge.NetConf
	ipamType string
	ipam     *ipamconfig.NetConf // nil unless miniipam or host-local
	ipamErr  error
	route    *route.NetConf // nil without miniroute
}

const secConflist = "conflist"

// conflist fills r.Conflist and returns the network of the first minicni
// conflist of the dir (normally the one in use), or nil.
func (r *Report) conflist(opt Options) *network {
	c := &r.Conflist
	c.Dir = opt.ConfDir
	files, err := libcni.ConfFiles(opt.ConfDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		r.blind(secConflist, fmt.Sprintf("cannot read the CNI conf dir %s: %v", opt.ConfDir, err), "check the path (--conf-dir) and run as root")
		return nil
	}
	if len(files) == 0 {
		r.problem(secConflist, "no CNI configuration in "+opt.ConfDir+": the node stays NotReady",
			"start minicni's DaemonSet (its init container runs minicni-installer install), or run minicni-installer install")
		return nil
	}
	c.Path = files[0]
	for _, f := range files[1:] {
		c.Others = append(c.Others, filepath.Base(f))
	}
	var found *network
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if i == 0 {
				r.blind(secConflist, fmt.Sprintf("cannot read %s: %v", f, err), "run as root")
			}
			continue
		}
		list, err := loadList(f, data)
		if err != nil {
			if i == 0 {
				c.Error = err.Error()
				r.problem(secConflist, fmt.Sprintf("%s, the file the runtime reads first, does not load: %v", f, err),
					"fix or remove it: the runtime cannot start pods with it")
			}
			continue
		}
		types := listTypes(list)
		isMinicni := contains(types, "minibridge")
		if i == 0 {
			c.Name, c.Types, c.Minicni = list.Name, types, isMinicni
		}
		if !isMinicni {
			continue
		}
		if i == 0 && filepath.Ext(f) == ".conflist" {
			if err := conflist.Validate(data); err != nil {
				c.Error = err.Error()
				r.problem(secConflist, fmt.Sprintf("%s is refused by a plugin: %v", f, err),
					"re-render it: restart minicni's DaemonSet pod on this node (or run minicni-installer install)")
			} else {
				c.Valid = true
			}
		}
		if i != 0 {
			r.problem(secConflist, fmt.Sprintf("the runtime uses %s (network %q), not minicni's %s", c.Path, c.Name, f),
				fmt.Sprintf("remove %s or give minicni's file a name that sorts first", c.Path))
		}
		found = parseNetwork(list)
		if found == nil {
			continue
		}
		break
	}
	if found == nil && c.Path != "" && !c.Minicni && c.Error == "" {
		r.problem(secConflist, fmt.Sprintf("the runtime uses %s (network %q), which is not minicni's, and no file in %s is", c.Path, c.Name, opt.ConfDir),
			"install minicni (its DaemonSet) or ignore this if the node is meant to run another CNI")
	}
	return found
}

// loadList reads a .conflist, or a single .conf (or .json) as a list of one
// with its name and cniVersion, as runtimes still read them.
func loadList(path string, data []byte) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(path) == ".conflist" {
		return libcni.ConfListFromBytes(data)
	}
	var single map[string]any
	if err := json.Unmarshal(data, &single); err != nil {
		return nil, fmt.Errorf("error parsing configuration: %w", err)
	}
	list, err := json.Marshal(map[string]any{"cniVersion": single["cniVersion"], "name": single["name"], "plugins": []any{single}})
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(list)
}

func listTypes(list *libcni.NetworkConfigList) []string {
	var out []string
	for _, p := range list.Plugins {
		for _, t := range []string{p.Network.Type, p.Network.IPAM.Type} {
			if t != "" && !contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseNetwork hands minibridge's, its IPAM's and miniroute's configs, with
// the list's name and cniVersion injected as libcni does, to their LoadConf.
func parseNetwork(list *libcni.NetworkConfigList) *network {
	n := &network{name: list.Name, types: listTypes(list)}
	for _, p := range list.Plugins {
		conf, err := libcni.InjectConf(p, map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
		if err != nil {
			continue
		}
		switch conf.Network.Type {
		case "minibridge":
			b, err := bridge.LoadConf(conf.Bytes)
			if err != nil {
				continue
			}
			n.bridge = b
			n.ipamType = conf.Network.IPAM.Type
			if n.ipamType == bridge.InProcessIPAM || n.ipamType == "host-local" {
				n.ipam, n.ipamErr = ipamconfig.LoadConf(conf.Bytes, "")
			}
		case "miniroute":
			if rc, err := route.LoadConf(conf.Bytes); err == nil {
				n.route = rc
			}
		}
	}
	if n.bridge == nil {
		return nil
	}
	return n
}

// firstLine is s's first non-blank line, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
