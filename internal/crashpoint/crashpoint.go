// Package crashpoint marks the steps of a plugin command where a crash test
// may stop the process: miniipam's store writes and minibridge's ADD. In a
// normal build Hit does nothing; a binary built with the crashpoints tag
// pauses at the point named by the MINICNI_CRASHPOINT environment variable,
// announces it on stderr and waits to be killed, so a test can land a kill -9
// between every pair of steps.
package crashpoint

// miniipam's points, in the order an ADD passes them. A reservation is
// written through an unnamed (O_TMPFILE) file where the filesystem allows
// it, else through a named temp file; TempClosed and TempRemoved exist only
// on the named path.
const (
	Locked       = "locked"        // lock held, nothing written yet
	BootReleased = "boot-released" // one stale reservation released after a reboot
	BootTemp     = "boot-temp"     // boot ID temp file written
	BootRecorded = "boot-recorded" // boot ID file renamed into place
	TempCreated  = "temp-created"  // reservation's temp file (unnamed or named) created, empty
	TempWritten  = "temp-written"  // owner written to it, not yet closed or linked
	TempClosed   = "temp-closed"   // named temp file written and closed
	Linked       = "linked"        // reservation linked to its address's name
	TempRemoved  = "temp-removed"  // named temp file's name removed
	LastWritten  = "last-written"  // last_reserved_ip written in place
)

// minibridge's points in its ADD (with ipam.type miniipam the store's points
// come first, in-process).
const (
	VethCreated  = "veth-created"  // veth pair made: host end on the bridge and up, pod end in the pod's netns, down
	VethAttached = "veth-attached" // host end's port options set; the pod end is configured next
)

// All is every miniipam point, for tests that visit each one: those of the
// named temp file path (with NoTmpfileEnv=1).
var All = []string{Locked, BootReleased, BootTemp, BootRecorded, TempCreated, TempWritten,
	TempClosed, Linked, TempRemoved, LastWritten}

// Unnamed is every miniipam point of the O_TMPFILE path, in order.
var Unnamed = []string{Locked, BootReleased, BootTemp, BootRecorded, TempCreated, TempWritten,
	Linked, LastWritten}

// NoTmpfileEnv set to 1 makes a crash-test build of miniipam write each
// reservation through a named temp file, as where the filesystem refuses
// O_TMPFILE (see NoTmpfile).
const NoTmpfileEnv = "MINICNI_CRASH_NO_TMPFILE"

// Env is the variable naming the point a crash-test binary pauses at.
const Env = "MINICNI_CRASHPOINT"

// Announce is what a paused binary prints on stderr, followed by the point's name.
const Announce = "minicni crashpoint: "
