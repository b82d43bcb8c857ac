package nodes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// File is a static node list: a JSON array of Node objects
// ({"name","internalIPs","podCIDRs"}), for running without an apiserver.
// It is read again on every List, and a change of the file (size, mtime or
// inode) is announced on Changed within Poll.
type File struct {
	Path string
	// Poll is how often the file is checked for changes (default 1 s).
	Poll time.Duration

	changed chan struct{}
	once    sync.Once
}

// NewFile returns the source for the file at path.
func NewFile(path string) *File { return &File{Path: path} }

func (f *File) init() { f.once.Do(func() { f.changed = make(chan struct{}, 1) }) }

// Start checks the file can be read and parsed, then watches it until ctx ends.
func (f *File) Start(ctx context.Context) error {
	f.init()
	// Stamp before the first read, so a change made at any time after it
	// is announced.
	last := f.stamp()
	if _, err := f.List(); err != nil {
		return err
	}
	poll := f.Poll
	if poll <= 0 {
		poll = time.Second
	}
	go func() {
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if s := f.stamp(); s != last {
				last = s
				notify(f.changed)
			}
		}
	}()
	return nil
}

func (f *File) stamp() string {
	st, err := os.Stat(f.Path)
	if err != nil {
		return "missing"
	}
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino // a rename over the file changes it
	}
	return fmt.Sprintf("%d %d %d", st.Size(), st.ModTime().UnixNano(), ino)
}

// List reads and decodes the file. Unknown keys are refused, so a typo
// ("podCIDR" for "podCIDRs") is an error rather than a node without subnets.
func (f *File) List() ([]Node, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("nodes file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var list []Node
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("nodes file %s: %w", f.Path, err)
	}
	seen := map[string]bool{}
	for _, n := range list {
		if seen[n.Name] {
			return nil, fmt.Errorf("nodes file %s: node %q listed twice", f.Path, n.Name)
		}
		seen[n.Name] = true
	}
	return list, nil
}

// Get returns the node called name.
func (f *File) Get(name string) (Node, bool, error) {
	list, err := f.List()
	if err != nil {
		return Node{}, false, err
	}
	for _, n := range list {
		if n.Name == name {
			return n, true, nil
		}
	}
	return Node{}, false, nil
}

// Changed announces a change of the file.
func (f *File) Changed() <-chan struct{} {
	f.init()
	return f.changed
}

// notify sends on a 1-buffered channel without blocking: one pending
// notification stands for any number of changes.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Static is a fixed node list, for tests and for `install --pod-cidr`.
type Static struct {
	Nodes []Node
	c     chan struct{}
}

// Start does nothing: the list is complete from the start.
func (s *Static) Start(context.Context) error { return nil }

// List returns the nodes.
func (s *Static) List() ([]Node, error) { return s.Nodes, nil }

// Get returns the node called name.
func (s *Static) Get(name string) (Node, bool, error) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true, nil
		}
	}
	return Node{}, false, nil
}

// Changed never fires.
func (s *Static) Changed() <-chan struct{} { return s.c }
