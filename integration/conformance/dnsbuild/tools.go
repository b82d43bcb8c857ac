//go:build tools

// Package dnsbuild pins CoreDNS, which hack/conformance.sh builds into
// bin/conformance.
package dnsbuild

import _ "github.com/coredns/coredns"
