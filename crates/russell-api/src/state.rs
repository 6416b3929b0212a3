//! The readable names of the wire's state enums, in one place: `running` for
//! [`pb::ServiceState::Running`], `healthy` for [`pb::ExternalState::Healthy`]. Clients match
//! on the enums and print these names; the server fills each message's `state` string from
//! here too (`convert.rs`), so the string and the enum cannot disagree.

use crate::pb::{ExternalState, ServiceState};

impl ServiceState {
    /// The lowercase name people read and JSON output carries (`"running"`); `"unknown"` for
    /// a value this client does not know.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Stopped => "stopped",
            Self::Waiting => "waiting",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Unhealthy => "unhealthy",
            Self::Restarting => "restarting",
            Self::Stopping => "stopping",
            Self::Failed => "failed",
            Self::Completed => "completed",
        }
    }

    /// Whether a process (spawned or adopted) can exist in this state.
    pub fn has_process(self) -> bool {
        matches!(
            self,
            Self::Starting | Self::Running | Self::Unhealthy | Self::Stopping
        )
    }

    /// Whether the service is up: healthy (`running`) or running with failing probes.
    pub fn is_up(self) -> bool {
        matches!(self, Self::Running | Self::Unhealthy)
    }

    /// Whether the service is at rest with nothing running and nothing scheduled.
    pub fn is_down(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed | Self::Completed)
    }
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl ExternalState {
    /// The lowercase name people read and JSON output carries (`"healthy"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified | Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for ExternalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_lowercase_enum_names() {
        for v in 1..=9 {
            let s = ServiceState::try_from(v).expect("a known value");
            let wire = s.as_str_name().trim_start_matches("SERVICE_STATE_");
            assert_eq!(s.as_str(), wire.to_lowercase(), "{s:?}");
        }
        for v in 1..=3 {
            let s = ExternalState::try_from(v).expect("a known value");
            let wire = s.as_str_name().trim_start_matches("EXTERNAL_STATE_");
            assert_eq!(s.as_str(), wire.to_lowercase(), "{s:?}");
        }
        assert_eq!(
            ServiceState::try_from(10).ok(),
            None,
            "a new value needs a name here"
        );
    }
}
