//! mDW's pipeline store, in memory: CreatePipeline checks the steps (non-empty unique ids,
//! known `depends_on`, no cycle) and keeps the pipeline; Get, List and Delete read and
//! remove it. ExecutePipeline is refused with UNIMPLEMENTED: Russell orchestrates
//! processes, it does not call the services' operations a pipeline's steps name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use tonic::Status;

use super::status::rfc3339;
use crate::mdw::{common as c, russell as m};
use crate::server::check_name;
use crate::server::registry::{MAX_KEY, MAX_TEXT, check_metadata, check_text};

/// Most pipelines kept.
const MAX_PIPELINES: usize = 1000;
/// Most steps per pipeline.
const MAX_STEPS: usize = 256;

/// The pipelines, by id.
#[derive(Debug, Default)]
pub struct Pipelines {
    map: Mutex<BTreeMap<String, m::Pipeline>>,
    next: AtomicU64,
}

fn check_steps(steps: &[m::PipelineStep]) -> Result<(), Status> {
    if steps.len() > MAX_STEPS {
        return Err(Status::invalid_argument(format!(
            "{} steps given; a pipeline has at most {MAX_STEPS}",
            steps.len()
        )));
    }
    let mut ids = HashSet::new();
    for (i, step) in steps.iter().enumerate() {
        if step.id.trim().is_empty() {
            return Err(Status::invalid_argument(format!(
                "steps[{i}] has an empty id: give every step an id"
            )));
        }
        check_text(&format!("steps[{i}].id"), &step.id, MAX_KEY)?;
        check_text(
            &format!("step '{}' service_type", step.id),
            &step.service_type,
            MAX_KEY,
        )?;
        check_text(
            &format!("step '{}' operation", step.id),
            &step.operation,
            MAX_KEY,
        )?;
        check_metadata(&step.parameters)?;
        if !ids.insert(step.id.as_str()) {
            return Err(Status::invalid_argument(format!(
                "step id '{}' is used twice: step ids must be unique",
                step.id
            )));
        }
    }
    for step in steps {
        for dep in &step.depends_on {
            if !ids.contains(dep.as_str()) {
                return Err(Status::invalid_argument(format!(
                    "step '{}' depends on '{dep}', which is no step of this pipeline",
                    step.id
                )));
            }
        }
    }
    if let Some(cycle) = find_cycle(steps) {
        return Err(Status::invalid_argument(format!(
            "steps form a cycle: {} — remove one of these depends_on",
            cycle.join(" → ")
        )));
    }
    Ok(())
}

/// A dependency cycle among the steps, as step ids (first repeated at the end).
fn find_cycle(steps: &[m::PipelineStep]) -> Option<Vec<String>> {
    let deps: HashMap<&str, &[String]> = steps
        .iter()
        .map(|s| (s.id.as_str(), s.depends_on.as_slice()))
        .collect();
    // 0 = unseen, 1 = on the current path, 2 = done.
    let mut mark: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        deps: &HashMap<&'a str, &'a [String]>,
        mark: &mut HashMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match mark.get(id) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| *p == id).unwrap_or(0);
                let mut cycle: Vec<String> = path[from..].iter().map(|s| s.to_string()).collect();
                cycle.push(id.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        mark.insert(id, 1);
        path.push(id);
        for d in deps.get(id).copied().unwrap_or_default() {
            if let Some(c) = visit(d.as_str(), deps, mark, path) {
                return Some(c);
            }
        }
        path.pop();
        mark.insert(id, 2);
        None
    }
    steps
        .iter()
        .find_map(|s| visit(s.id.as_str(), &deps, &mut mark, &mut Vec::new()))
}

fn check_id(field: &str, id: &str) -> Result<(), Status> {
    check_name(field, id).map_err(|_| {
        Status::invalid_argument(format!(
            "{field} '{}' is not a pipeline id: 1-256 bytes without control characters",
            id.escape_debug()
        ))
    })
}

impl Pipelines {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, m::Pipeline>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn create(&self, req: m::CreatePipelineRequest) -> Result<m::Pipeline, Status> {
        let id = if req.id.is_empty() {
            format!("pipeline-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1)
        } else {
            check_id("id", &req.id)?;
            req.id.trim().to_string()
        };
        check_text("name", &req.name, MAX_KEY)?;
        check_text("description", &req.description, MAX_TEXT)?;
        check_steps(&req.steps)?;
        let pipeline = m::Pipeline {
            id: id.clone(),
            name: req.name,
            description: req.description,
            steps: req.steps,
            created_at: rfc3339(SystemTime::now()),
        };
        let mut map = self.lock();
        if map.contains_key(&id) {
            return Err(Status::already_exists(format!(
                "a pipeline with id '{id}' exists; delete it first or pick another id"
            )));
        }
        if map.len() >= MAX_PIPELINES {
            return Err(Status::resource_exhausted(format!(
                "Russell keeps at most {MAX_PIPELINES} pipelines; delete some first"
            )));
        }
        map.insert(id, pipeline.clone());
        Ok(pipeline)
    }

    pub(super) fn get(&self, req: &m::GetPipelineRequest) -> Result<m::Pipeline, Status> {
        check_id("id", &req.id)?;
        self.lock()
            .get(req.id.trim())
            .cloned()
            .ok_or_else(|| not_found(&req.id))
    }

    pub(super) fn list(&self) -> m::PipelineListResponse {
        m::PipelineListResponse {
            pipelines: self.lock().values().cloned().collect(),
        }
    }

    pub(super) fn delete(&self, req: &m::DeletePipelineRequest) -> Result<c::Empty, Status> {
        check_id("id", &req.id)?;
        self.lock()
            .remove(req.id.trim())
            .map(|_| c::Empty {})
            .ok_or_else(|| not_found(&req.id))
    }

    pub(super) fn execute(
        &self,
        req: &m::ExecutePipelineRequest,
    ) -> Result<m::PipelineExecutionResponse, Status> {
        check_id("pipeline_id", &req.pipeline_id)?;
        if !self.lock().contains_key(req.pipeline_id.trim()) {
            return Err(not_found(&req.pipeline_id));
        }
        Err(Status::unimplemented(format!(
            "pipeline '{}' is kept but not executed: Russell starts, stops and watches \
             processes; it does not call the service operations a pipeline's steps name. \
             Run the steps through the services themselves (e.g. via Kant)",
            req.pipeline_id.trim()
        )))
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!(
        "no pipeline with id '{}' (ListPipelines shows the ids; pipelines live in memory and \
         are gone after a restart of Russell)",
        id.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, deps: &[&str]) -> m::PipelineStep {
        m::PipelineStep {
            id: id.to_string(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    fn msg(steps: &[m::PipelineStep]) -> String {
        check_steps(steps)
            .err()
            .map(|s| s.message().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn steps_are_checked_and_named() {
        assert!(check_steps(&[step("a", &[]), step("b", &["a"])]).is_ok());
        assert!(msg(&[step("", &[])]).contains("steps[0] has an empty id"));
        assert!(msg(&[step("a", &[]), step("a", &[])]).contains("'a' is used twice"));
        assert!(msg(&[step("a", &["x"])]).contains("step 'a' depends on 'x'"));
        let cycle = msg(&[step("a", &["c"]), step("b", &["a"]), step("c", &["b"])]);
        assert!(cycle.contains("a → c → b → a"), "{cycle}");
        assert!(msg(&[step("a", &["a"])]).contains("a → a"));
    }
}
