//! The deployment examples people copy: Kubernetes manifests pin their image to a
//! release, run as a non-root user on a read-only root filesystem with no privilege to
//! gain, and give the program the writable folders it needs; the systemd unit keeps
//! what it writes private; each sets its memory limit to the memory budget plus the
//! floor the program states.

use e2e::{repo_root, run_python};

/// Checks each container of each manifest (PyYAML comes with moto in the test virtualenv).
const CHECK_MANIFESTS: &str = r#"
import sys, yaml
problems = []
floor = int(sys.argv[1])
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        spec = doc["spec"]
        pod = (spec.get("jobTemplate", {}).get("spec", spec))["template"]["spec"]
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or not psc.get("runAsUser"):
            problems.append(f"{path}: the pod does not run as a non-root user")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{path}: the service account token is mounted")
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            image = c["image"]
            tag = image.rsplit("/", 1)[-1]
            if ":" not in tag and "@sha256:" not in image or tag.endswith(":latest"):
                problems.append(f"{path}: {c['name']} uses an unpinned image {image}")
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{path}: {c['name']} has a writable root filesystem")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{path}: {c['name']} may gain privileges")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{path}: {c['name']} keeps Linux capabilities")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            for needed in ["/tmp", "/cache"]:
                if mounts.get(needed) not in volumes:
                    problems.append(f"{path}: {c['name']} has no writable {needed}")
            words = " ".join(c.get("command", []) + c.get("args", [])).replace("=", " ").split()
            budget = int(words[words.index("--memory-budget-mib") + 1]) if "--memory-budget-mib" in words else 256
            resources = c.get("resources", {})
            for kind in ["requests", "limits"]:
                memory = resources.get(kind, {}).get("memory")
                if memory != f"{budget + floor}Mi":
                    problems.append(f"{path}: {c['name']} {kind} {memory} of memory, not the budget {budget} MiB + the floor {floor} MiB")
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            if env.get("XDG_CACHE_HOME") != "/cache":
                problems.append(f"{path}: {c['name']} keeps its index cache on the read-only root")
print("\n".join(problems))
"#;

#[test]
fn kubernetes_manifests_are_pinned_non_root_read_only_and_sized_by_the_budget() {
    let dir = repo_root().join("deploy/kubernetes");
    let mut manifests: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 2, "{manifests:?}");
    let floor = pipeline::sync::MEMORY_FLOOR_MIB.to_string();
    let args: Vec<&str> = std::iter::once(floor.as_str())
        .chain(manifests.iter().map(String::as_str))
        .collect();
    let problems = run_python(CHECK_MANIFESTS, &args);
    assert!(problems.trim().is_empty(), "{problems}");
}

#[test]
fn the_systemd_unit_keeps_what_it_writes_private_and_is_sized_by_the_budget() {
    let unit =
        std::fs::read_to_string(repo_root().join("deploy/systemd/teams-archiver.service")).unwrap();
    let settings: Vec<&str> = unit.lines().map(str::trim).collect();
    for needed in ["UMask=0077", "NoNewPrivileges=yes"] {
        assert!(settings.contains(&needed), "{needed} missing:\n{unit}");
    }
    let budget = unit
        .split("--memory-budget-mib ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map_or(256, |n| n.parse::<usize>().unwrap());
    let limit = format!("MemoryMax={}M", budget + pipeline::sync::MEMORY_FLOOR_MIB);
    assert!(
        settings.contains(&limit.as_str()),
        "{limit}: the budget plus the floor:\n{unit}"
    );
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.lines().any(|l| l.trim() == "USER 10001:10001"),
        "the image runs as the numeric user the manifests name:\n{dockerfile}"
    );
}
