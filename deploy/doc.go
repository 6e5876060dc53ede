// Package deploy holds no code. Its directory carries the deployment files
// (kubernetes/, systemd/, nats/, prometheus/, grafana/) and its tests check
// them against the code: every setting name against package config, every
// metric name against package metrics, probes against the health endpoints,
// and each file with the real tool that reads it (kustomize, systemd-analyze,
// nats-server -t, promtool), installed by `make tools`.
package deploy
