package integration

import (
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/minicni/minicni/ipam/miniipam/config"
	"github.com/minicni/minicni/plugins/minibridge/bridge"
	"github.com/minicni/minicni/plugins/miniroute/route"
)

// TestConflistsLoad: every conflist of conflist/ is read by libcni and each
// plugin's config, as libcni hands it over (name and cniVersion injected),
// passes that plugin's own validation. Needs no root.
func TestConflistsLoad(t *testing.T) {
	files, err := filepath.Glob(conflistPath("*.conflist"))
	if err != nil || len(files) < 5 {
		t.Fatalf("conflists: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			list, err := libcni.ConfListFromFile(f)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, p := range list.Plugins {
				// What libcni gives a plugin: its own config with the list's
				// name and version.
				inj, err := libcni.InjectConf(p, map[string]any{"name": list.Name, "cniVersion": list.CNIVersion})
				if err != nil {
					t.Fatal(err)
				}
				typ := p.Network.Type
				seen[typ] = true
				switch typ {
				case "minibridge":
					_, err = bridge.LoadConf(inj.Bytes)
					if err == nil && p.Network.IPAM.Type == "miniipam" {
						_, err = config.LoadConf(inj.Bytes, "")
					}
				case "miniroute":
					_, err = route.LoadConf(inj.Bytes)
				case "portmap":
				default:
					t.Errorf("unexpected plugin type %q", typ)
				}
				if err != nil {
					t.Errorf("%s rejects its config: %v", typ, err)
				}
			}
			if !seen["minibridge"] || !seen["miniroute"] {
				t.Errorf("chain lacks minibridge or miniroute: %v", seen)
			}
		})
	}
}
