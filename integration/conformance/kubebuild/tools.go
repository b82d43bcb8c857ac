//go:build tools

// Package kubebuild pins what hack/conformance.sh builds from Kubernetes: e2e.test
// (go test -c of k8s.io/kubernetes/test/e2e), agnhost (the image most network
// tests run) and kube-proxy, at the version make e2e uses.
package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
