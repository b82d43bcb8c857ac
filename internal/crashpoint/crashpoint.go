// Package crashpoint marks the steps of a plugin command where a crash test
// may stop the process: miniipam's store writes and minibridge's ADD. In a
// normal build Hit does nothing; a binary built with the crashpoints tag
// pauses at the point named by the MINICNI_CRASHPOINT environment variable,
// announces it on stderr and waits to be killed, so a test can land a kill -9
// between every pair of steps.
package crashpoint

// miniipam's points, in the order an ADD passes them.
const (
	Locked       = "locked"        // lock held, nothing written yet
	BootReleased = "boot-released" // one stale reservation released after a reboot
	BootTemp     = "boot-temp"     // boot ID temp file written
	BootRecorded = "boot-recorded" // boot ID file renamed into place
	TempCreated  = "temp-created"  // reservation temp file created, empty
	TempWritten  = "temp-written"  // owner written, not yet closed
	TempClosed   = "temp-closed"   // temp file written and closed
	Linked       = "linked"        // reservation linked to its address's name
	TempRemoved  = "temp-removed"  // temp name removed
	LastWritten  = "last-written"  // last_reserved_ip written in place
)

// minibridge's points in its ADD (with ipam.type miniipam the store's points
// come first, in-process).
const (
	VethCreated  = "veth-created"  // veth pair made: host end on the bridge and up, pod end in the pod's netns, down
	VethAttached = "veth-attached" // host end's port options set; the pod end is configured next
)

// All is every miniipam point, for tests that visit each one.
var All = []string{Locked, BootReleased, BootTemp, BootRecorded, TempCreated, TempWritten,
	TempClosed, Linked, TempRemoved, LastWritten}

// Env is the variable naming the point a crash-test binary pauses at.
const Env = "MINICNI_CRASHPOINT"

// Announce is what a paused binary prints on stderr, followed by the point's name.
const Announce = "minicni crashpoint: "
