package libmini

import (
	"io"
	"runtime"
	"strconv"

	cniversion "github.com/containernetworking/cni/pkg/version"
)

// Version is stamped at build time with
// -ldflags "-X github.com/minicni/minicni/libmini.Version=…".
var Version = "dev"

// Versions is every CNI spec version minicni's plugins accept and answer in.
var Versions = cniversion.All

// About is the text a plugin prints when run without CNI_COMMAND.
// PluginMain takes it at every start, so it is a concatenation, not a
// Sprintf.
func About(plugin string) string {
	return plugin + " " + Version + " (minicni): CNI spec 0.1.0-1.1.0"
}

// encodeVersions writes what Versions.Encode writes (the CNI library's JSON
// encoder: {"cniVersion":…,"supportedVersions":[…]} and a newline) without
// encoding/json. VERSION is the call runtimes make most often and the one
// issue 17's start target times: json's first Encode of a type builds its
// encoder by reflection and grew the goroutine's stack several times, about
// a fifth of what miniipam's VERSION cost beyond a no-op Go binary
// (perf record of 300 calls). The versions are short ASCII strings, which
// strconv quotes exactly as JSON does; TestEncodeVersions compares the two
// byte for byte.
func encodeVersions(w io.Writer) error {
	b := make([]byte, 0, 160)
	b = append(b, `{"cniVersion":`...)
	b = strconv.AppendQuote(b, cniversion.Current())
	b = append(b, `,"supportedVersions":[`...)
	for i, v := range Versions.SupportedVersions() {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, v)
	}
	b = append(b, "]}\n"...)
	_, err := w.Write(b)
	return err
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
