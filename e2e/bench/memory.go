package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
)

// managerMemoryMiB is the manager container's working set, as the kubelet's
// CRI stats (the node's cgroup) report it. The node is the manager pod's
// spec.nodeName, read at each sample (the pod may have moved since the last
// one): a kind node's container has the node's name.
func (b *bench) managerMemoryMiB(ctx context.Context) (float64, error) {
	pod, err := b.managerPod(ctx)
	if err != nil {
		return 0, err
	}
	node, id := pod.Spec.NodeName, containerID(managerStatus(pod))
	out, err := exec.CommandContext(ctx, "docker", "exec", node, "crictl", "stats", "-o", "json", "--id", id).Output()
	if err != nil {
		return 0, fmt.Errorf("crictl stats of the manager (pod %s) in node %s: %w", pod.Name, node, err)
	}
	var stats struct {
		Stats []struct {
			Memory struct {
				WorkingSetBytes struct {
					Value json.Number `json:"value"`
				} `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(out, &stats); err != nil {
		return 0, fmt.Errorf("parsing crictl stats %q: %w", out, err)
	}
	if len(stats.Stats) == 0 {
		return 0, fmt.Errorf("crictl stats has no stats for the manager (container %s in node %s): %q", id, node, out)
	}
	bytesUsed, err := stats.Stats[0].Memory.WorkingSetBytes.Value.Float64()
	if err != nil {
		return 0, err
	}
	return bytesUsed / (1 << 20), nil
}
