// Command pause is the sandbox process of TestCRI's pause image: it holds the
// pod's namespaces for containerd and exits on SIGTERM or SIGINT, which is
// how containerd stops a sandbox. No registry is reachable from CI, so the
// test builds this instead of pulling registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
