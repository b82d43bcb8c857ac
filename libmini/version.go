package libmini

import (
	"fmt"
	"runtime"

	cniversion "github.com/containernetworking/cni/pkg/version"
)

// Version is stamped at build time with
// -ldflags "-X github.com/minicni/minicni/libmini.Version=…".
var Version = "dev"

// Versions is every CNI spec version minicni's plugins accept and answer in.
var Versions = cniversion.All

// About is the text a plugin prints when run without CNI_COMMAND.
func About(plugin string) string {
	return fmt.Sprintf("%s %s (minicni): CNI spec %s", plugin, Version, "0.1.0-1.1.0")
}

// InitPlugin prepares a plugin process for a verb; PluginMain calls it just
// before the verb, so VERSION and the about text do not pay for it. The
// runtime gets one P: a plugin's work is short and sequential, and with more
// Ps the scheduler spins idle threads. A/B on the 2-core development machine,
// the plugins inheriting the variable: `GOMAXPROCS=1 go run ./bench -bin
// bin/bench -pods 40 -conc 1,32 -rounds 1 -skip-dataplane` against
// GOMAXPROCS=2, twice each, gave minicni's CPU per pod 10.2 ms against
// 13.3 ms on average. No thread is locked here: code that enters a network
// namespace locks its thread for that time (minibridge's inNetNS), and a
// locked thread costs the runtime a template thread (an extra clone) at the
// first lock.
func InitPlugin() {
	runtime.GOMAXPROCS(1)
}
