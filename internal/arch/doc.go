// Package arch holds no code: its test checks the import rules of
// docs/architecture.md, so the package map stays true as the code grows.
package arch
