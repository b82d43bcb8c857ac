// Command nooplibs is the second floor of the bench's exec-cost table: a Go
// program that does nothing but links the libraries minibridge links (the
// CNI library's types, vishvananda/netlink, the plugins library's ns and
// netlinksafe, encoding/json, log/slog, os/exec), built with the plugins'
// flags. Its start less noop's is what those packages' initialisation and
// size cost any plugin that imports them, before the plugin's own code runs.
package main

import (
	_ "encoding/json"
	_ "log/slog"
	_ "os/exec"

	_ "github.com/containernetworking/cni/pkg/types/100"
	_ "github.com/containernetworking/cni/pkg/version"
	_ "github.com/containernetworking/plugins/pkg/netlinksafe"
	_ "github.com/containernetworking/plugins/pkg/ns"
	_ "github.com/vishvananda/netlink"
)

func main() {}
