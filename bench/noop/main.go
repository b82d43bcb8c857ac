// Command noop is the floor of the bench's exec-cost table: a Go program
// that does nothing, built with the plugins' flags, so its start is what
// the runtime and the kernel's exec cost any Go plugin.
package main

func main() {}
