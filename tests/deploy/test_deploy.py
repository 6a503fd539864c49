"""deploy/: the Kubernetes manifests and Prometheus files are well formed and
agree with each other and with what they describe (the systemd unit's
capabilities, the daemon's config, the metrics port); promtool checks the
Prometheus config and rules and runs the rules' unit tests.

Run by ctest (tests/deploy/CMakeLists.txt) from the source tree's root.
Needs python3-yaml and promtool (scripts/install-deps.sh); without promtool
the promtool tests skip, and fail under SPECACT_REQUIRE_PRIVILEGED=1.
"""
import json
import os
import re
import shutil
import subprocess
import unittest

import yaml

ROOT = os.environ.get("SPECACT_SOURCE_DIR", os.getcwd())
K8S = os.path.join(ROOT, "deploy", "kubernetes")
PROM = os.path.join(ROOT, "deploy", "prometheus")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def unit_capabilities():
    """CapabilityBoundingSet of systemd/specactd.service, without CAP_."""
    with open(os.path.join(ROOT, "systemd", "specactd.service")) as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet="):
                return {c.removeprefix("CAP_") for c in line.split("=", 1)[1].split()}
    raise AssertionError("no CapabilityBoundingSet in the unit")


def require_promtool(test):
    if shutil.which("promtool"):
        return
    if os.environ.get("SPECACT_REQUIRE_PRIVILEGED") == "1":
        test.fail("promtool not found (apt install prometheus) but SPECACT_REQUIRE_PRIVILEGED=1")
    test.skipTest("promtool not found (apt install prometheus)")


class Kubernetes(unittest.TestCase):
    def setUp(self):
        self.kustomization = load_all(os.path.join(K8S, "kustomization.yaml"))[0]
        self.docs = []
        for name in self.kustomization["resources"]:
            self.docs += load_all(os.path.join(K8S, name))
        self.ds = next(d for d in self.docs if d["kind"] == "DaemonSet")
        self.pod = self.ds["spec"]["template"]["spec"]
        self.container = self.pod["containers"][0]
        with open(os.path.join(K8S, "specactd.json")) as f:
            self.config = json.load(f)

    def test_every_document_names_its_kind_and_api(self):
        for d in self.docs:
            self.assertIn("apiVersion", d)
            self.assertIn("kind", d)
            self.assertIn("name", d["metadata"])

    def test_the_generated_configmap_is_what_the_pod_mounts(self):
        (gen,) = self.kustomization["configMapGenerator"]
        for f in gen["files"]:
            self.assertTrue(os.path.isfile(os.path.join(K8S, f)), f)
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        self.assertEqual(volumes["config"]["configMap"]["name"], gen["name"])
        mounts = {m["name"]: m["mountPath"] for m in self.container["volumeMounts"]}
        self.assertEqual(self.container["args"][:3],
                         ["run", "--config", mounts["config"] + "/specactd.json"])

    def test_the_pod_keeps_what_the_unit_keeps(self):
        sc = self.container["securityContext"]
        self.assertTrue(self.pod["hostPID"])
        self.assertFalse(sc["privileged"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertEqual(set(sc["capabilities"]["add"]), unit_capabilities())
        self.assertFalse(self.pod["automountServiceAccountToken"])

    def test_the_state_directory_is_on_the_node(self):
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in self.container["volumeMounts"]}
        self.assertEqual(mounts["state"], self.config["state_dir"])
        self.assertEqual(volumes["state"]["hostPath"]["path"], self.config["state_dir"])

    def test_the_config_fits_an_unprivileged_pod(self):
        # /proc/sys and /sys are read-only there: per-task knobs only; no bus.
        self.assertEqual(self.config["knobs"]["allow"], ["task.*"])
        self.assertFalse(self.config["dbus"]["enabled"])
        self.assertIn(list(self.config["target"]), [["comm"], ["cgroup"]])

    def test_the_metrics_port_is_the_one_listened_on_and_scraped(self):
        port = int(self.config["metrics"]["listen"].rsplit(":", 1)[1])
        (cport,) = self.container["ports"]
        self.assertEqual(cport["containerPort"], port)
        self.assertEqual(self.container["livenessProbe"]["httpGet"]["path"], "/metrics")
        scrape = load_all(os.path.join(PROM, "prometheus-kubernetes.yml"))[0]
        (job,) = scrape["scrape_configs"]
        keep = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"]
                if r.get("action") == "keep"}
        self.assertEqual(keep[("__meta_kubernetes_pod_container_port_name",)], cport["name"])
        self.assertEqual(keep[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)],
                         self.ds["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"])
        self.assertEqual(job["kubernetes_sd_configs"][0]["namespaces"]["names"],
                         [self.kustomization["namespace"]])


class Prometheus(unittest.TestCase):
    def promtool(self, *args):
        require_promtool(self)
        r = subprocess.run(["promtool", *args], cwd=PROM, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout + r.stderr

    def test_the_host_config_is_valid(self):
        out = self.promtool("check", "config", "prometheus.yml")
        self.assertIn("SUCCESS", out)

    def test_the_rules_are_valid_and_fire_as_their_unit_tests_say(self):
        self.assertIn("SUCCESS", self.promtool("check", "rules", "specactd-rules.yml"))
        self.assertIn("SUCCESS", self.promtool("test", "rules", "specactd-rules.test.yml"))

    def test_every_rule_has_a_unit_test(self):
        rules = {r["alert"] for g in load_all(os.path.join(PROM, "specactd-rules.yml"))[0]["groups"]
                 for r in g["rules"]}
        tested = {t["alertname"] for case in load_all(os.path.join(PROM, "specactd-rules.test.yml"))[0]["tests"]
                  for t in case["alert_rule_test"]}
        self.assertEqual(rules, tested)


class Grafana(unittest.TestCase):
    def test_the_dashboard_is_json_with_the_panels_issue_17_asks_for(self):
        with open(os.path.join(ROOT, "deploy", "grafana", "specact-dashboard.json")) as f:
            d = json.load(f)
        exprs = " ".join(t["expr"] for p in d["panels"] for t in p["targets"])
        for metric in ("specact_objective_p95_seconds", "specact_objective_p99_seconds",
                       "specact_speculation_hit_ratio", "specact_agent_tokens_total"):
            self.assertIn(metric, exprs)
        self.assertTrue(any(re.search(r"changes\(specact_knob_value", a.get("expr", ""))
                            for a in d["annotations"]["list"]))


if __name__ == "__main__":
    unittest.main()
