//! `/etc/ecs/ecs.config`: the ECS agent's environment file. We set our four keys and keep every
//! other line (comments included) as it was.

use clawster_core::fs::{
    ensure_dir, read_optional, write_atomic, FsError, HostRoot, Ownership, WriteOutcome,
};

/// The ECS agent's configuration file.
pub const ECS_CONFIG: &str = "/etc/ecs/ecs.config";

/// Cluster names ECS accepts: 1-255 letters, digits, `-` and `_`.
pub fn valid_cluster(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Renders ecs.config from the existing text with our keys set.
pub fn merge(existing: &str, cluster: &str) -> String {
    let wanted = [
        ("ECS_CLUSTER", cluster.to_string()),
        ("ECS_AWSVPC_BLOCK_IMDS", "true".to_string()),
        ("ECS_DISABLE_PRIVILEGED", "true".to_string()),
        // The bot image is pinned by digest: a cached copy is the same bytes, so a task restart
        // needs no registry round trip (and survives a registry outage).
        ("ECS_IMAGE_PULL_BEHAVIOR", "prefer-cached".to_string()),
    ];
    let mut done = [false; 4];
    let mut out = String::new();
    for line in existing.lines() {
        let key = line.split_once('=').map(|(k, _)| k.trim());
        match key.and_then(|k| wanted.iter().position(|(w, _)| *w == k)) {
            Some(i) if !done[i] => {
                out.push_str(&format!("{}={}\n", wanted[i].0, wanted[i].1));
                done[i] = true;
            }
            // A repeated key of ours is dropped so the file says one thing.
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (i, (k, v)) in wanted.iter().enumerate() {
        if !done[i] {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

/// Writes ecs.config under `root` (root:root 0600: it may hold registry credentials).
pub fn write_ecs_config(root: &HostRoot, cluster: &str) -> Result<WriteOutcome, FsError> {
    let path = root.path(ECS_CONFIG);
    let existing = read_optional(&path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let dir = path.parent().expect("ecs.config has a parent");
    if !dir.exists() {
        ensure_dir(dir, Ownership::root(0o755))?;
    }
    write_atomic(
        &path,
        merge(&existing, cluster).as_bytes(),
        Ownership::root(0o600),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sets_ours_and_keeps_others() {
        let old = "# site\nECS_CLUSTER=old\nECS_LOGLEVEL=debug\nECS_CLUSTER=dup\n";
        let new = merge(old, "bots");
        assert_eq!(new, "# site\nECS_CLUSTER=bots\nECS_LOGLEVEL=debug\nECS_AWSVPC_BLOCK_IMDS=true\nECS_DISABLE_PRIVILEGED=true\nECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n");
        assert_eq!(merge(&new, "bots"), new);
        assert_eq!(merge("", "c").lines().count(), 4);
        // A site's own pull behaviour is replaced: the bot image is pinned by digest.
        assert!(merge("ECS_IMAGE_PULL_BEHAVIOR=always\n", "c")
            .lines()
            .any(|l| l == "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached"));
        assert!(!merge("ECS_IMAGE_PULL_BEHAVIOR=always\n", "c").contains("always"));
    }

    #[test]
    fn cluster_names() {
        assert!(valid_cluster("clawster-bots_1"));
        assert!(!valid_cluster(""));
        assert!(!valid_cluster("a\nECS_DISABLE_PRIVILEGED=false"));
        assert!(!valid_cluster("a b"));
    }
}
