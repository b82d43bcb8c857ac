//go:build tools

// Package containerd2build pins the containerd 2.x commands the CRI test
// TestCRIContainerd2 runs; hack/containerd2.sh builds them from this module
// into bin/containerd2.
package containerd2build

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
