// Package chaos churns pods through minicni's default chain with faults, as a
// node under a busy runtime sees them: concurrent ADDs and DELs through
// libcni, plugin processes SIGKILLed at random points, DELs after the pod's
// namespace is gone, repeated ADDs, lost DELs, and a GC with the live
// attachments. The test is chaos_test.go; see README.md.
package chaos
