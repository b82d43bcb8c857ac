package libmini

import (
	"fmt"

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
