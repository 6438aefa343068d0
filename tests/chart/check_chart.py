"""Checks the Helm chart with Helm's own library (helm-python-sdk): lint with default values and
with every option on, render offline and assert on the manifests, and make sure the values
schema refuses wrong values. Exits non-zero on the first failure."""

import base64
import os
import sys

import helm_python as helm

HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "..", "..", "helm", "email-connector")
ALL_ON = helm.values_from_yaml(open(os.path.join(HERE, "values-all-on.yaml")).read())
checks = 0


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)


def lint_errors(values):
    report = helm.lint(CHART, values, strict=False)
    return report["errors"] + [m["error"] for m in report["messages"] if m["severity"] >= 3]


def render(values):
    manifests = helm.Chart.load(CHART).render(values, name="mail", namespace="camunda", is_install=True)
    return {
        os.path.basename(path): helm.values_from_yaml(text)
        for path, text in manifests.items()
        if path.endswith(".yaml") and text.strip()
    }


for name, values in [("defaults", None), ("every option on", ALL_ON)]:
    errors = lint_errors(values)
    check(not errors, f"lint with {name}: {errors}")

# Defaults: a hardened Deployment wired to its ConfigMap and Secret.
docs = render(None)
deployment = docs["deployment.yaml"]
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
selector = deployment["spec"]["selector"]["matchLabels"]
check(selector == {"app.kubernetes.io/name": "email-connector", "app.kubernetes.io/instance": "mail"}, f"selector {selector}")
labels = deployment["spec"]["template"]["metadata"]["labels"]
check(all(labels.get(k) == v for k, v in selector.items()), "pod labels match the selector")
check(docs["service.yaml"]["spec"]["selector"] == selector, "the Service selects the pods")
check(docs["pdb.yaml"]["spec"]["selector"]["matchLabels"] == selector, "the PDB selects the pods")
check(deployment["spec"]["replicas"] == 2, "two replicas by default")
check(pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532, "pod runs as non-root")
sc = container["securityContext"]
check(sc["readOnlyRootFilesystem"] is True, "read-only root filesystem")
check(sc["allowPrivilegeEscalation"] is False, "no privilege escalation")
check(sc["capabilities"]["drop"] == ["ALL"], "all capabilities dropped")
check(container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, "liveness probe on /healthz")
check(container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, "readiness probe on /readyz")
check(container["ports"][0]["containerPort"] == 8080, "HTTP port")
check(container["args"] == ["run"], "runs the worker")
config = docs["configmap.yaml"]["data"]
check(pod["terminationGracePeriodSeconds"] > int(config["EMAIL_SHUTDOWN_GRACE"]), "grace period longer than the drain time")
env_from = container["envFrom"]
check({"configMapRef": {"name": "mail-email-connector"}} in env_from, "ConfigMap in envFrom")
check({"secretRef": {"name": "mail-email-connector"}} in env_from, "Secret in envFrom")
check(config["ZEEBE_GRPC_ADDRESS"] == "http://camunda-zeebe-gateway:26500", "gateway address")
pdb = docs["pdb.yaml"]["spec"]
check(pdb.get("maxUnavailable") == 1 and "minAvailable" not in pdb, f"a PDB that lets one replica drain: {pdb}")
limits = container["resources"]["limits"]
check(limits == {"memory": "448Mi"}, f"memory limit derived from 32 jobs x 3 MiB x 4 + 64Mi: {limits}")
check(container["resources"]["requests"]["memory"] == "32Mi", "memory request kept")
check([v["name"] for v in pod["volumes"]] == ["tmp"], "no CA or secrets volume by default")
check(pod["volumes"][0]["emptyDir"] == {"sizeLimit": "864Mi"},
      f"/tmp sized for 32 jobs x 25 MiB of documents + 64Mi: {pod['volumes'][0]}")
check(config["EMAIL_MAX_DOCUMENT_BYTES"] == "26214400", "document allowance per job")
check(config["EMAIL_IMAP_SESSIONS_PER_LOGIN"] == "8", "IMAP sessions per login")
check(not any(k.startswith("CAMUNDA_") for k in config), f"no Camunda settings by default: {sorted(config)}")
check("EMAIL_SECRETS_DIR" not in config and "SSL_CERT_FILE" not in config, "no secrets directory or CA by default")
check("ZEEBE_CLIENT_SECRET" not in config, "no secret in the ConfigMap")
check("servicemonitor.yaml" not in docs and "hpa.yaml" not in docs, "optional objects off by default")
check(config["EMAIL_ALLOWED_HOSTS"] == "*", "every host allowed by default")
check(config["EMAIL_DENIED_HOSTS"] == "169.254.0.0/16,fe80::/10,metadata.google.internal", "link-local and metadata denied by default")
check(config["EMAIL_ALLOW_INSECURE"] == "true", "insecure settings allowed by default")
check(config["EMAIL_ALLOW_NAMES_BY_ADDRESS"] == "false", "names are not allowed by address by default")
check("inbound-configmap.yaml" not in docs and "EMAIL_INBOUND_CONFIG" not in config, "no watchers by default")
check(config["EMAIL_INBOUND_ONLY"] == "false", "job types served by default")
check(config["EMAIL_INBOUND_FROM_MODELS"] == "false", "no discovery in deployed models by default")
check("EMAIL_INBOUND_MODEL_TYPES" not in config, "no extra inbound types by default")

# Every option on.
docs = render(ALL_ON)
deployment = docs["deployment.yaml"]
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
check("replicas" not in deployment["spec"], "the HPA owns the replica count")
check(docs["hpa.yaml"]["spec"]["scaleTargetRef"]["name"] == "mail-email-connector", "HPA targets the Deployment")
check(docs["servicemonitor.yaml"]["spec"]["endpoints"][0]["path"] == "/metrics", "ServiceMonitor scrapes /metrics")
check(docs["servicemonitor.yaml"]["metadata"]["labels"]["release"] == "prometheus", "ServiceMonitor labels")
check(container["image"] == "registry.example.com/email-connector:1.2.3", "image")
secret = docs["secret.yaml"]["data"]
decoded = {k: base64.b64decode(v).decode() for k, v in secret.items()}
check(decoded == {"ZEEBE_CLIENT_SECRET": "client-secret-value", "EMAIL_SECRET_SMTP_PASSWORD": "smtp-password-value",
                  "EMAIL_SECRET_IMAP_PASSWORD": "imap-password-value"}, f"secret keys {sorted(decoded)}")
config = docs["configmap.yaml"]["data"]
for value in decoded.values():
    check(value not in str(config) and value not in str(deployment), "secret values stay in the Secret")
check(config["EMAIL_OPERATIONS"] == "smtp:send,imap:list,pop3:read", "operations")
check(config["EMAIL_CAMUNDA_JOB_TYPE"] == "io.camunda:email:1", "Camunda's job type")
check(config["EMAIL_ALLOWED_HOSTS"] == "*.mail.example.com,smtp.example.org,10.0.0.0/8,fd00::/8", "allowed hosts")
check(config["EMAIL_DENIED_HOSTS"] == "", "an empty denied list clears it")
check(config["EMAIL_ALLOW_INSECURE"] == "false", "insecure settings refused")
check(config["EMAIL_ALLOW_NAMES_BY_ADDRESS"] == "true", "names allowed by address when asked")
check(config["EMAIL_MAX_RESPONSE_BYTES"] == "2097152", "response budget")
check(config["EMAIL_HTTP_PORT"] == "9090" and container["ports"][0]["containerPort"] == 9090, "custom port")
check({"secretRef": {"name": "more-mail-secrets"}} in container["envFrom"], "extra envFrom")
check(container["env"] == [
    {"name": "CAMUNDA_BASIC_AUTH_PASSWORD",
     "valueFrom": {"secretKeyRef": {"name": "camunda-connector-credentials", "key": "connector-password"}}},
    {"name": "EXTRA_SETTING", "value": "on"}], f"basic auth password from the existing Secret's key, then extra env: {container['env']}")
check(any(v["name"] == "mail-secrets" for v in pod["volumes"]), "extra volume")
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = {m["name"]: m for m in container["volumeMounts"]}
check(volumes["ca-bundle"]["configMap"] == {"name": "corporate-ca", "items": [{"key": "bundle.pem", "path": "bundle.pem"}]},
      f"CA bundle volume {volumes.get('ca-bundle')}")
check(mounts["ca-bundle"]["mountPath"] == "/etc/email-connector/ca", "CA bundle mounted")
check(config["CAMUNDA_CA_CERTIFICATE_PATH"] == "/etc/email-connector/ca/bundle.pem", "gateway trusts the bundle")
check(config["SSL_CERT_FILE"] == "/etc/email-connector/ca/bundle.pem", "mail servers trust the bundle")
check(volumes["secrets-dir"]["secret"] == {"secretName": "mail-secret-files"}, "secrets directory from the Secret, whole")
check(mounts["secrets-dir"] == {"name": "secrets-dir", "mountPath": "/var/run/email-secrets", "readOnly": True},
      "secrets directory mounted without subPath (rotates)")
check(config["EMAIL_SECRETS_DIR"] == "/var/run/email-secrets", "EMAIL_SECRETS_DIR")
check(config["CAMUNDA_REST_ADDRESS"] == "https://cluster.example.com/v2-api", "REST address")
check(config["CAMUNDA_AUTH_STRATEGY"] == "OAUTH", "auth strategy")
check(config["CAMUNDA_CLIENT_ID"] == "email-worker" and config["CAMUNDA_OAUTH_URL"] == "https://login.example.com/oauth/token",
      "OAuth settings by today's names")
check(config["CAMUNDA_BASIC_AUTH_USERNAME"] == "connector", "basic auth user")
check(config["CAMUNDA_TENANT_IDS"] == "t1,t2", "tenants")
check(container["resources"]["limits"]["memory"] == "480Mi", "memory limit from 96Mi + 64 jobs x 2 MiB x 3")
check(volumes["tmp"]["emptyDir"] == {"sizeLimit": "2Gi"}, f"/tmp size as given: {volumes['tmp']}")
check(config["EMAIL_MAX_DOCUMENT_BYTES"] == "10485760", "document allowance as given")
check(config["EMAIL_IMAP_SESSIONS_PER_LOGIN"] == "4", "IMAP sessions per login as given")
check(docs["pdb.yaml"]["spec"] == {"minAvailable": 2, "selector": docs["pdb.yaml"]["spec"]["selector"]}, "minAvailable when set")
check(pod["serviceAccountName"] == "mail-worker", "service account name")
check(docs["serviceaccount.yaml"]["metadata"]["name"] == "mail-worker", "service account created")
inbound = docs["inbound-configmap.yaml"]
watchers = helm.values_from_yaml(inbound["data"]["watchers.yaml"])
check(watchers == {"watchers": ALL_ON["inbound"]["watchers"]}, f"watchers file {watchers}")
check(watchers["watchers"][0]["authentication"]["password"] == "{{secrets.IMAP_PASSWORD}}", "password stays a placeholder")
check(config["EMAIL_INBOUND_CONFIG"] == "/etc/email-connector/inbound/watchers.yaml", "watchers file path")
check(config["EMAIL_INBOUND_ONLY"] == "true", "watchers only")
check(config["EMAIL_INBOUND_FROM_MODELS"] == "true", "discovery in deployed models")
check(config["EMAIL_INBOUND_DISCOVERY_INTERVAL"] == "PT10S", "discovery interval")
check(config["EMAIL_INBOUND_MODEL_TYPES"] == "acme:email-inbound:1", "a hybrid template's inbound type")
mount = [m for m in container["volumeMounts"] if m["name"] == "inbound"]
check(mount and mount[0]["mountPath"] == "/etc/email-connector/inbound", "watchers file mounted")
volume = [v for v in pod["volumes"] if v["name"] == "inbound"]
check(volume and volume[0]["configMap"]["name"] == inbound["metadata"]["name"], "volume from the inbound ConfigMap")
check("checksum/inbound" in deployment["spec"]["template"]["metadata"]["annotations"], "pods roll when watchers change")

# Basic auth from values, and a limit given by hand wins over the derived one.
docs = render({"zeebe": {"basicAuth": {"username": "connector"}}, "secrets": {"basicAuthPassword": "connector-pw"},
               "resources": {"limits": {"memory": "1Gi"}}})
secret = {k: base64.b64decode(v).decode() for k, v in docs["secret.yaml"]["data"].items()}
check(secret == {"CAMUNDA_BASIC_AUTH_PASSWORD": "connector-pw"}, f"basic auth password in the Secret: {sorted(secret)}")
check("connector-pw" not in str(docs["configmap.yaml"]), "password not in the ConfigMap")
limits = docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
check(limits == {"memory": "1Gi"}, f"explicit memory limit kept: {limits}")

# An existing Secret instead of one made by the chart.
docs = render({"secrets": {"create": False, "existingSecret": "mail-credentials"}})
check("secret.yaml" not in docs, "no Secret rendered with existingSecret")
env_from = docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
check({"secretRef": {"name": "mail-credentials"}} in env_from, "existingSecret referenced")

# Wrong values are refused by the schema, or by the template where a schema cannot say it.
chart = helm.Chart.load(CHART)
for wrong in [{"replicaCount": "two"}, {"worker": {"maxJobsActive": 0}}, {"logging": {"format": "xml"}},
              {"worker": {"operations": ["smtp:sned"]}}, {"worker": {"jobTimeout": "5 minutes"}},
              {"colour": "blue"}, {"http": {"port": 70000}}, {"image": {"pullPolicy": "Sometimes"}},
              {"hostPolicy": {"allowedHosts": []}}, {"hostPolicy": {"deniedHosts": ["mail server"]}},
              {"hostPolicy": {"allowedHosts": "*"}}, {"hostPolicy": {"allowInsecure": "no"}},
              {"zeebe": {"authStrategy": "KERBEROS"}}, {"zeebe": {"tenantIds": ["t1,t2"]}},
              {"caBundle": {"gateway": "yes"}}, {"secretsDirectory": {"mountPath": "relative"}},
              {"memorySizing": {"budgetsPerJob": 0}},
              {"inbound": {"watchers": [{"name": "Support", "authentication": {}, "server": {"host": "h"},
                                         "publishMessage": {"name": "m"}}]}},
              {"inbound": {"watchers": [{"name": "s", "authentication": {}, "server": {"host": "h"}}]}},
              {"inbound": {"watchers": [{"name": "s", "authentication": {}, "server": {"host": "h", "port": 0},
                                         "publishMessage": {"name": "m"}}]}},
              {"inbound": {"watchers": [{"name": "s", "authentication": {}, "server": {"host": "h"},
                                         "maxPerPoll": 0, "publishMessage": {"name": "m"}}]}},
              {"inbound": {"only": "yes"}}]:
    try:
        chart.validate_schema(wrong)
    except helm.HelmError as error:
        check(True, f"schema refuses {wrong}: {error}")
    else:
        check(False, f"schema accepted {wrong}")
try:
    render({"terminationGracePeriodSeconds": 20, "worker": {"shutdownGraceSeconds": 30}})
except helm.HelmError as error:
    check("terminationGracePeriodSeconds" in str(error), f"grace period check says why: {error}")
else:
    check(False, "a grace period shorter than the drain time was accepted")

try:
    render({"caBundle": {"existingConfigMap": "a", "existingSecret": "b"}})
except helm.HelmError as error:
    check("caBundle" in str(error), f"two CA sources refused: {error}")
else:
    check(False, "a CA bundle from both a ConfigMap and a Secret was accepted")

print(f"chart checks: {checks} passed, 0 failed")
