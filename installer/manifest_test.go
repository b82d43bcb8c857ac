package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/minicni/minicni/installer/conflist"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

func loadManifest(t *testing.T) []runtime.Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("manifests", "minicni.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []runtime.Object
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(raw.Raw)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if err != nil {
			t.Fatalf("%v in %s", err, raw.Raw)
		}
		objs = append(objs, obj)
	}
	return objs
}

// TestManifest checks the DaemonSet's promises (see the issue) and that the
// args it passes, with the ConfigMap's values, work with this binary.
func TestManifest(t *testing.T) {
	var ds *appsv1.DaemonSet
	var cm *corev1.ConfigMap
	var role *rbacv1.ClusterRole
	var binding *rbacv1.ClusterRoleBinding
	var sa *corev1.ServiceAccount
	for _, o := range loadManifest(t) {
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			ds = o
		case *corev1.ConfigMap:
			cm = o
		case *rbacv1.ClusterRole:
			role = o
		case *rbacv1.ClusterRoleBinding:
			binding = o
		case *corev1.ServiceAccount:
			sa = o
		}
	}
	if ds == nil || cm == nil || role == nil || binding == nil || sa == nil {
		t.Fatalf("missing objects: ds=%v cm=%v role=%v binding=%v sa=%v", ds != nil, cm != nil, role != nil, binding != nil, sa != nil)
	}
	if ds.Namespace != "kube-system" || sa.Namespace != "kube-system" || cm.Namespace != "kube-system" {
		t.Error("not everything is in kube-system")
	}
	if len(role.Rules) != 1 || !cmp.Equal(role.Rules[0].Resources, []string{"nodes"}) || !cmp.Equal(role.Rules[0].Verbs, []string{"get", "list", "watch"}) {
		t.Errorf("ClusterRole must grant only get/list/watch on nodes: %+v", role.Rules)
	}
	if binding.RoleRef.Name != role.Name || binding.Subjects[0].Name != sa.Name {
		t.Errorf("binding does not tie %s to %s", role.Name, sa.Name)
	}
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.PriorityClassName != "system-node-critical" || spec.ServiceAccountName != sa.Name {
		t.Errorf("hostNetwork=%v priorityClassName=%q serviceAccount=%q", spec.HostNetwork, spec.PriorityClassName, spec.ServiceAccountName)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" || spec.Tolerations[0].Effect != "" {
		t.Errorf("tolerations must tolerate every taint: %+v", spec.Tolerations)
	}
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Args[0] != "install" {
		t.Fatalf("init container must run install: %+v", spec.InitContainers)
	}
	if len(spec.Containers) != 1 || spec.Containers[0].Args[0] != "agent" {
		t.Fatalf("container must run agent: %+v", spec.Containers)
	}
	agent := spec.Containers[0]
	for _, c := range []corev1.Container{spec.InitContainers[0], agent} {
		if !slices.Contains(c.Args, "--overlay=$(OVERLAY)") || cm.Data["overlay"] != "auto" {
			t.Errorf("%s: want --overlay=$(OVERLAY) with the ConfigMap's overlay: auto; args %q, overlay %q", c.Name, c.Args, cm.Data["overlay"])
		}
	}
	sc := agent.SecurityContext
	if sc == nil || (sc.Privileged != nil && *sc.Privileged) || !cmp.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("agent must have NET_ADMIN and NET_RAW, not privileged: %+v", sc)
	}
	lp := agent.LivenessProbe
	if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" || !slices.Contains(agent.Args, "--listen="+lp.HTTPGet.Host+":"+lp.HTTPGet.Port.String()) {
		t.Errorf("liveness probe must hit the agent's --listen /healthz: %+v", lp)
	}
	if rp := agent.ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" || !slices.Contains(agent.Args, "--listen="+rp.HTTPGet.Host+":"+rp.HTTPGet.Port.String()) {
		t.Errorf("readiness probe must hit the agent's --listen /readyz: %+v", rp)
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounted := map[string]bool{}
	for _, m := range agent.VolumeMounts {
		mounted[hostPaths[m.Name]] = true
	}
	for _, p := range []string{"/opt/cni/bin", "/etc/cni/net.d", "/run/xtables.lock", "/var/lib/cni"} {
		if !mounted[p] {
			t.Errorf("agent does not mount host %s", p)
		}
	}

	// The template in the ConfigMap is the repository's default chain.
	var repo, inCM any
	_ = json.Unmarshal(conflist.DefaultTemplate, &repo)
	if err := json.Unmarshal([]byte(cm.Data["10-minicni.conflist"]), &inCM); err != nil {
		t.Fatalf("ConfigMap conflist: %v", err)
	}
	if diff := cmp.Diff(repo, inCM); diff != "" {
		t.Errorf("ConfigMap conflist differs from conflist/10-minicni.conflist (-repo +configmap):\n%s", diff)
	}

	// Run both containers' args, with $(VAR) expanded from the ConfigMap
	// as the kubelet does, against this binary.
	env := map[string]string{"NODE_NAME": "node-1"}
	for _, e := range agent.Env {
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			env[e.Name] = cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
		}
	}
	expand := func(args []string) []string {
		var out []string
		for _, a := range args {
			out = append(out, regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(a, func(v string) string { return env[v[2:len(v)-1]] }))
		}
		return out
	}
	tmpl := filepath.Join(t.TempDir(), "10-minicni.conflist")
	if err := os.WriteFile(tmpl, []byte(cm.Data["10-minicni.conflist"]), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, conf := t.TempDir(), t.TempDir()
	// Later flags win: redirect the host paths into temporary directories.
	args := append(expand(spec.InitContainers[0].Args), "--template="+tmpl, "--bin-dir="+bin, "--conf-dir="+conf, "--from="+fakeFrom(t), "--pod-cidr=10.244.3.0/24")
	if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
		t.Errorf("install with the manifest's args %q: %v\n%s", args, err, out)
	}
	if data, err := os.ReadFile(filepath.Join(conf, "10-minicni.conflist")); err != nil || !strings.Contains(string(data), "10.244.3.0/24") {
		t.Errorf("conflist: %v %s", err, data)
	}
	// -h after every flag: exit 0 only if each flag before it parsed.
	if out, err := exec.Command(binary, append(expand(agent.Args), "-h")...).CombinedOutput(); err != nil {
		t.Errorf("agent does not accept the manifest's args %q: %v\n%s", agent.Args, err, out)
	}
}
