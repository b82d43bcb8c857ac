package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// agentNode is one entry of the installer agent's --nodes-file.
type agentNode struct {
	Name        string   `json:"name"`
	InternalIPs []string `json:"internalIPs"`
	PodCIDRs    []string `json:"podCIDRs"`
}

// startAgents writes the nodes file and starts one `minicni-installer agent`
// per node, inside the node's namespace, managing routes only (namespaces do
// not isolate the file system, so it must not install files on this host).
// The agents run in their own session, so a kept lab's agents outlive the
// process that started them; Down finds them by their command line.
func (l *Lab) startAgents() error {
	var nodes []agentNode
	for _, n := range l.Nodes {
		an := agentNode{Name: n.Name, InternalIPs: []string{n.IP.String()}, PodCIDRs: []string{n.PodCIDR.String()}}
		if n.PodCIDR6 != nil {
			an.InternalIPs = append(an.InternalIPs, n.IP6.String())
			an.PodCIDRs = append(an.PodCIDRs, n.PodCIDR6.String())
		}
		nodes = append(nodes, an)
	}
	b, err := json.MarshalIndent(nodes, "", "  ")
	if err != nil {
		return err
	}
	file := filepath.Join(l.Opts.StateDir, "nodes.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return err
	}
	exited := make(chan string, len(l.Nodes))
	for _, n := range l.Nodes {
		log := filepath.Join(l.Opts.StateDir, n.Name, "agent.log")
		logf, err := os.Create(log)
		if err != nil {
			return err
		}
		args := []string{"netns", "exec", n.Name, l.Opts.Agent, "agent",
			"--nodes-file", file, "--node-name", n.Name, "--manage-files=false", "--listen", ""}
		if l.Opts.Overlay != "" {
			args = append(args, "--overlay", l.Opts.Overlay)
		}
		cmd := exec.Command("ip", args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return fmt.Errorf("start agent on %s: %w", n.Name, err)
		}
		go func() { // reap it when it exits before us
			err := cmd.Wait()
			b, _ := os.ReadFile(log)
			exited <- fmt.Sprintf("the agent on %s exited (%v): %s", n.Name, err, bytes.TrimSpace(b))
		}()
		l.Opts.Logf("node %s: minicni-installer agent started (pid %d)", n.Name, cmd.Process.Pid)
	}
	if err := l.waitRoutes(10*time.Second, exited); err != nil {
		return err
	}
	l.Opts.Logf("the agents programmed the routes to every other node's pod subnet")
	return nil
}

// waitRoutes waits until every node has a route to every other node's pod
// subnets (both families with DualStack), as the agents program them: via that node, or through the VXLAN
// device (which route it is, Path tells).
// An agent that exits meanwhile ends the wait with its log.
func (l *Lab) waitRoutes(timeout time.Duration, exited <-chan string) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := l.missingRoutes()
		if missing == "" {
			return nil
		}
		select {
		case why := <-exited:
			return errors.New(why)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agents did not program %s within %s (logs in %s/*/agent.log)", missing, timeout, l.Opts.StateDir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *Lab) missingRoutes() string {
	for _, n := range l.Nodes {
		var routes []netlink.Route
		if err := n.Do(func() error {
			var err error
			routes, err = netlinksafe.RouteList(nil, netlink.FAMILY_ALL)
			return err
		}); err != nil {
			return err.Error()
		}
		for _, o := range l.Nodes {
			if o == n {
				continue
			}
			for _, cidr := range []*net.IPNet{o.PodCIDR, o.PodCIDR6} {
				if cidr == nil {
					continue
				}
				found := false
				for _, r := range routes {
					if r.Dst != nil && r.Dst.String() == cidr.String() {
						found = true
					}
				}
				if !found {
					return fmt.Sprintf("a route to %s (node %s) on %s", cidr, o.Name, n.Name)
				}
			}
		}
	}
	return ""
}

// killAgents stops every agent of the lab named prefix: processes whose
// command line is `… agent … --node-name <prefix>-n…`.
func killAgents(prefix string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		if !isAgentOf(args, prefix) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("stop agent %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

func isAgentOf(args []string, prefix string) bool {
	agent := false
	for i, a := range args {
		if a == "agent" && i > 0 && strings.HasSuffix(args[i-1], "minicni-installer") {
			agent = true
		}
		if agent && a == "--node-name" && i+1 < len(args) && strings.HasPrefix(args[i+1], prefix+"-n") {
			return true
		}
	}
	return false
}
