//! Clients' and teams' requests-per-minute limits shared by the replicas: one atomic script
//! call at admission (`limits.lua`, GCRA), for requests whose client or team has such a limit
//! only. When Redis cannot answer in time, this replica's own limiters decide.

use super::Handle;
use crate::tenants::{Refusal, Tab};
use std::sync::LazyLock;
use std::time::Duration;

static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("limits.lua")));

/// Lets `tab`'s request through its client's and team's RPM limits, counted over every
/// replica; this replica's own count when Redis does not answer.
pub(crate) async fn check_rpm(handle: &Handle, tab: &mut Tab) -> Result<(), Refusal> {
    let limits = tab.rpm_limits();
    if limits.is_empty() {
        return Ok(());
    }
    let now = super::unix_ms();
    let mut invocation = SCRIPT.prepare_invoke();
    for (name, _) in &limits {
        invocation.key(format!("{}rpm:{name}", handle.prefix));
    }
    invocation.arg(now);
    for (_, rpm) in &limits {
        invocation.arg(rpm);
    }
    let mut connection = handle.connection.clone();
    let call = invocation.invoke_async::<Vec<i64>>(&mut connection);
    let answer = match tokio::time::timeout(handle.timeout, call).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return fall_back(tab, &e.to_string()),
        Err(_) => return fall_back(tab, "no answer in time"),
    };
    let ms =
        |v: Option<&i64>| Duration::from_millis(v.map_or(0, |&v| u64::try_from(v).unwrap_or(0)));
    match answer.first() {
        Some(0) => {
            let left: Vec<(u32, Duration)> = answer[1..]
                .chunks_exact(2)
                .map(|c| (u32::try_from(c[0]).unwrap_or(0), ms(c.get(1))))
                .collect();
            tab.shared_rpm_passed(&left);
            Ok(())
        }
        Some(&party) => {
            let index = usize::try_from(party - 1).unwrap_or(0);
            Err(tab.shared_rpm_refused(index, ms(answer.get(1))))
        }
        None => fall_back(tab, "an empty answer"),
    }
}

fn fall_back(tab: &mut Tab, why: &str) -> Result<(), Refusal> {
    tracing::debug!("shared RPM limits: Redis gave {why}; this replica's own count decides");
    tab.check_local_rpm()
}
