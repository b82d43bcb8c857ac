package bridge

import (
	"log/slog"
	"time"
)

// DefaultUpTimeout bounds the wait for the host end of the veth to be up;
// the veth is normally up within a few milliseconds.
const DefaultUpTimeout = 5 * time.Second

// Node is what Add, Del, Check, Status and GC act with, built once per
// command by the main (as miniroute's rules.Node): the command's logger and
// the bound on the host veth's wait. The zero Node is usable: it discards
// the log and waits DefaultUpTimeout. Delegated IPAM calls go through
// libmini, which holds their deadline (libmini.IPAMTimeout).
type Node struct {
	// Log receives what minibridge did and why a command failed; nil
	// discards it.
	Log *slog.Logger
	// UpTimeout bounds the wait for the host end of the veth to be up; 0
	// means DefaultUpTimeout.
	UpTimeout time.Duration
}

func (n Node) log() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Log
}

func (n Node) upTimeout() time.Duration {
	if n.UpTimeout == 0 {
		return DefaultUpTimeout
	}
	return n.UpTimeout
}
