package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// managerMemoryMiB is the manager container's working set, as the kubelet's
// CRI stats (the node's cgroup) report it.
func (b *bench) managerMemoryMiB(ctx context.Context) (float64, error) {
	id, err := exec.CommandContext(ctx, "docker", "exec", b.o.nodeContainer, "crictl", "ps", "--name", "^manager$", "-q").Output()
	if err != nil {
		return 0, fmt.Errorf("finding the manager container in node %s: %w", b.o.nodeContainer, err)
	}
	if len(bytes.TrimSpace(id)) == 0 {
		return 0, fmt.Errorf("no running manager container in node %s", b.o.nodeContainer)
	}
	out, err := exec.CommandContext(ctx, "docker", "exec", b.o.nodeContainer, "crictl", "stats", "-o", "json", "--id", strings.TrimSpace(strings.Fields(string(id))[0])).Output()
	if err != nil {
		return 0, fmt.Errorf("crictl stats: %w", err)
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
		return 0, fmt.Errorf("crictl stats has no stats for the manager: %q", out)
	}
	bytesUsed, err := stats.Stats[0].Memory.WorkingSetBytes.Value.Float64()
	if err != nil {
		return 0, err
	}
	return bytesUsed / (1 << 20), nil
}
