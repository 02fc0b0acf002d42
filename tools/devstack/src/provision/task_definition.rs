//! An ECS task definition, run by the devstack as a workspace binary.

use super::*;

/// An ECS task definition.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let (id, properties) = (c.id, c.properties);
    let mut spec = task_definition_spec(id, properties)?;
    let task_role = text(properties, "TaskRoleArn").unwrap_or_default();
    spec.session = c
        .stack
        .roles
        .get(&task_role)
        .cloned()
        .ok_or_else(|| anyhow!("{id}: TaskRoleArn {task_role:?} is no role of the stack"))?;
    spec.passes_roles = ["TaskRoleArn", "ExecutionRoleArn"]
        .iter()
        .filter_map(|k| text(properties, k))
        .collect();
    let arn = c.arn("ecs", &format!("task-definition/{}:1", spec.family));
    c.stack.task_definitions.insert(spec.family.clone(), spec);
    Ok(Created::new(arn.clone(), true).with("TaskDefinitionArn", arn))
}

pub(super) fn task_definition_spec(
    logical_id: &str,
    properties: &Value,
) -> Result<TaskDefinitionSpec> {
    let family = text(properties, "Family")
        .ok_or_else(|| anyhow!("task definition {logical_id} has no Family"))?;
    let container = properties
        .pointer("/ContainerDefinitions/0")
        .ok_or_else(|| anyhow!("task definition {logical_id} has no container"))?;
    let command: Vec<String> = container
        .get("Command")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(scalar_text).collect())
        .unwrap_or_default();
    let (program, arguments) = command
        .split_first()
        .ok_or_else(|| anyhow!("task definition {logical_id}: the container has no Command"))?;
    let environment = container
        .get("Environment")
        .and_then(Value::as_array)
        .map(|vars| {
            vars.iter()
                .filter_map(|kv| Some((text(kv, "Name")?, kv.get("Value").map(scalar_text)?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(TaskDefinitionSpec {
        family,
        container: text(container, "Name").unwrap_or_else(|| "main".into()),
        binary: program.rsplit('/').next().unwrap_or(program).to_owned(),
        arguments: arguments.to_vec(),
        environment,
        passes_roles: Vec::new(),
        session: RoleSession::default(),
    })
}
