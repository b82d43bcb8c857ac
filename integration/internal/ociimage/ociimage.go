// Package ociimage writes container images as OCI image layout archives, the
// form `ctr images import` reads, so the integration tests run containers
// with no registry: a pause image (a tiny static Go program) and a busybox
// image (Debian's busybox-static).
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The images the tests import. Their names are in a domain that cannot
// exist (.test), so containerd never mistakes them for a registry's.
const (
	PauseRef   = "minicni.test/pause:1"
	BusyboxRef = "minicni.test/busybox:1"
)

// BusyboxApplets are the commands the tests' containers run.
var BusyboxApplets = []string{"sh", "ping", "httpd", "hostname", "sleep", "cat", "ip", "wget", "nc"}

// OCI media types and annotations (image-spec v1.0).
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	annotationRef = "org.opencontainers.image.ref.name"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Entrypoint []string `json:"Entrypoint,omitempty"`
		Cmd        []string `json:"Cmd,omitempty"`
		Env        []string `json:"Env,omitempty"`
		WorkingDir string   `json:"WorkingDir,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// entry is one file of an image's single layer.
type entry struct {
	name string // without a leading slash
	mode int64
	dir  bool
	link string // symlink target
	data []byte
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// epoch keeps layers reproducible: the same files make the same digest.
var epoch = time.Unix(0, 0)

// layer returns the gzip layer and the digest of its uncompressed tar (the
// config's diff_id).
func layer(entries []entry) (gz []byte, diffID string, err error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return z.Bytes(), digestOf(raw.Bytes()), nil
}

// write writes an OCI image layout archive (oci-layout, index.json and
// blobs/sha256/: a config, a manifest and one gzip layer) holding one image
// named ref, the form `ctr images import` reads.
// It stays one function: its steps run once, in order, on local state they
// share; split, each would only pass that state on to the next.
func write(path, ref string, entries []entry, entrypoint, cmd []string) error {
	gz, diffID, err := layer(entries)
	if err != nil {
		return err
	}
	var cfg imageConfig
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Config.Entrypoint, cfg.Config.Cmd = entrypoint, cmd
	cfg.Config.Env = []string{"PATH=/bin"}
	cfg.Config.WorkingDir = "/"
	cfg.RootFS.Type, cfg.RootFS.DiffIDs = "layers", []string{diffID}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	m := manifest{SchemaVersion: 2, MediaType: mediaManifest,
		Config: descriptor{MediaType: mediaConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))},
		Layers: []descriptor{{MediaType: mediaLayer, Digest: digestOf(gz), Size: int64(len(gz))}}}
	mJSON, err := json.Marshal(m)
	if err != nil {
		return err
	}
	idx := index{SchemaVersion: 2, MediaType: mediaIndex, Manifests: []descriptor{{
		MediaType: mediaManifest, Digest: digestOf(mJSON), Size: int64(len(mJSON)),
		Annotations: map[string]string{annotationRef: ref},
		Platform:    &platform{Architecture: runtime.GOARCH, OS: "linux"},
	}}}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return err
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", idxJSON},
		{blobPath(cfgJSON), cfgJSON},
		{blobPath(gz), gz},
		{blobPath(mJSON), mJSON},
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			f.Close()
			return err
		}
	}
	for _, file := range files {
		h := &tar.Header{Name: file.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(file.data)), ModTime: epoch}
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(file.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func blobPath(b []byte) string {
	return "blobs/sha256/" + strings.TrimPrefix(digestOf(b), "sha256:")
}

// baseDirs are created in every image, so runc has mount points to use.
var baseDirs = []entry{
	{name: "dev", mode: 0o755, dir: true},
	{name: "etc", mode: 0o755, dir: true},
	{name: "proc", mode: 0o555, dir: true},
	{name: "sys", mode: 0o555, dir: true},
	{name: "tmp", mode: 0o1777, dir: true},
}

// BuildPause compiles testdata/pause as a static binary and writes the
// pause image archive to path, named PauseRef.
func BuildPause(dir, path string) error { return BuildPauseAs(dir, path, PauseRef) }

// BuildPauseAs is BuildPause with the image named ref.
func BuildPauseAs(dir, path, ref string) error {
	bin := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/pause")
	cmd.Dir = packageDir()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build pause: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	entries := append(append([]entry{}, baseDirs...), entry{name: "pause", mode: 0o755, data: data})
	return write(path, ref, entries, []string{"/pause"}, nil)
}

// BuildBusybox writes the test image archive: Debian's static busybox
// as /bin/busybox and a symlink per applet the test uses.
func BuildBusybox(busybox, path string) error {
	if err := requireStatic(busybox); err != nil {
		return err
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	entries := append(append([]entry{}, baseDirs...),
		entry{name: "bin", mode: 0o755, dir: true},
		entry{name: "bin/busybox", mode: 0o755, data: data})
	for _, a := range BusyboxApplets {
		entries = append(entries, entry{name: "bin/" + a, mode: 0o777, link: "busybox"})
	}
	return write(path, BusyboxRef, entries, nil, []string{"/bin/sh"})
}

// requireStatic fails for a dynamically linked binary, which would not run
// in an image without its libraries (Debian's "busybox" package, as opposed
// to "busybox-static").
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: install Debian's busybox-static", path)
		}
	}
	return nil
}

func packageDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}
