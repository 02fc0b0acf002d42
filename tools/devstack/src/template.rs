//! template.yaml read the way CloudFormation would: YAML short-form tags become intrinsic
//! functions, and `Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::Join`, `Fn::If`, `Fn::Select`
//! and conditions are resolved against parameters, pseudo parameters and the physical
//! names of resources already provisioned. It is the one description of the system; the
//! local stack keeps no second list of resources.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Option<Value>>,
    /// Parameters of a list type (`CommaDelimitedList`, `List<…>`): `Ref` gives an array.
    pub list_parameters: std::collections::BTreeSet<String>,
    pub conditions: Map<String, Value>,
    pub globals: Value,
    pub resources: BTreeMap<String, Resource>,
    /// `Outputs`: name → its declaration (`Value`, optional `Condition`), unresolved.
    pub outputs: BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Value,
    /// Resource-level `Metadata` (SAM keeps BuildProperties there).
    pub metadata: Value,
    pub condition: Option<String>,
    /// `DeletionPolicy` and `UpdateReplacePolicy`, as written (None: CloudFormation's default).
    pub deletion_policy: Option<String>,
    pub update_replace_policy: Option<String>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Template> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Template::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Template> {
        let yaml: serde_norway::Value = serde_norway::from_str(text)?;
        let json = yaml_to_json(yaml)?;
        let object = json
            .as_object()
            .ok_or_else(|| anyhow!("template is not a mapping"))?;
        let parameters = object
            .get("Parameters")
            .and_then(Value::as_object)
            .map(|params| {
                params
                    .iter()
                    .map(|(name, spec)| (name.clone(), spec.get("Default").cloned()))
                    .collect()
            })
            .unwrap_or_default();
        let list_parameters = object
            .get("Parameters")
            .and_then(Value::as_object)
            .map(|params| {
                params
                    .iter()
                    .filter(|(_, spec)| {
                        spec.get("Type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"))
                    })
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let conditions = object
            .get("Conditions")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let resources = object
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow!("template has no Resources"))?
            .iter()
            .map(|(id, spec)| {
                let kind = spec
                    .get("Type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("resource {id} has no Type"))?;
                Ok((
                    id.clone(),
                    Resource {
                        logical_id: id.clone(),
                        kind: kind.to_owned(),
                        properties: spec
                            .get("Properties")
                            .cloned()
                            .unwrap_or(Value::Object(Map::new())),
                        metadata: spec.get("Metadata").cloned().unwrap_or(Value::Null),
                        condition: spec
                            .get("Condition")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        deletion_policy: spec
                            .get("DeletionPolicy")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        update_replace_policy: spec
                            .get("UpdateReplacePolicy")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    },
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Template {
            parameters,
            list_parameters,
            conditions,
            globals: object.get("Globals").cloned().unwrap_or(Value::Null),
            resources,
            outputs: object
                .get("Outputs")
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.values().filter(move |r| r.kind == kind)
    }
}

/// `!Ref X` → `{"Ref": X}`, `!GetAtt A.B` → `{"Fn::GetAtt": [A, B]}`, `!Sub s` → `{"Fn::Sub": s}`, …
fn yaml_to_json(value: serde_norway::Value) -> Result<Value> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_>>()?)
        }
        Y::Mapping(map) => {
            let mut object = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)?.trim().to_owned(),
                };
                object.insert(key, yaml_to_json(v)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = yaml_to_json(tagged.value)?;
            let (function, argument) = match name {
                "Ref" => ("Ref".to_owned(), inner),
                "Condition" => ("Condition".to_owned(), inner),
                "GetAtt" => {
                    let argument = match inner {
                        Value::String(s) => {
                            let (resource, attribute) = s
                                .split_once('.')
                                .ok_or_else(|| anyhow!("!GetAtt {s} is not Resource.Attribute"))?;
                            Value::Array(vec![resource.into(), attribute.into()])
                        }
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), argument)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut object = Map::new();
            object.insert(function, argument);
            Value::Object(object)
        }
    })
}

/// What intrinsic functions resolve against.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub values: HashMap<String, Value>,
    pub attributes: HashMap<(String, String), Value>,
    pub conditions: HashMap<String, bool>,
}

/// Resolution stopped at a resource that is not provisioned yet.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not provisioned yet")]
pub struct NotYet(pub String);

impl Scope {
    pub fn new(stack: &str, region: &str, account: &str) -> Scope {
        let mut scope = Scope::default();
        for (name, value) in [
            ("AWS::StackName", stack.to_owned()),
            ("AWS::Region", region.to_owned()),
            ("AWS::AccountId", account.to_owned()),
            ("AWS::Partition", "aws".to_owned()),
            ("AWS::URLSuffix", "amazonaws.com".to_owned()),
            (
                "AWS::StackId",
                format!("arn:aws:cloudformation:{region}:{account}:stack/{stack}/local"),
            ),
        ] {
            scope.values.insert(name.to_owned(), Value::String(value));
        }
        scope
    }

    /// The scope of a stack before any resource exists: pseudo parameters, each parameter
    /// as `given` or its default, and the conditions they decide.
    pub fn for_parameters(
        template: &Template,
        stack: &str,
        region: &str,
        account: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<Scope> {
        let mut scope = Scope::new(stack, region, account);
        for (name, default) in &template.parameters {
            let value = given
                .get(name)
                .map(|v| Value::String(v.clone()))
                .or_else(|| default.clone())
                .ok_or_else(|| anyhow!("parameter {name} has no default and no value was given"))?;
            // A list parameter is given as "a,b" and referenced as ["a", "b"] ("" is []).
            let value = match (&value, template.list_parameters.contains(name)) {
                (Value::String(text), true) => Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| item.into())
                        .collect(),
                ),
                _ => value,
            };
            scope.values.insert(name.clone(), value);
        }
        scope.evaluate_conditions(template)?;
        Ok(scope)
    }

    pub fn evaluate_conditions(&mut self, template: &Template) -> Result<()> {
        for name in template.conditions.keys() {
            let value = self.condition(template, name)?;
            self.conditions.insert(name.clone(), value);
        }
        Ok(())
    }

    fn condition(&self, template: &Template, name: &str) -> Result<bool> {
        let spec = template
            .conditions
            .get(name)
            .ok_or_else(|| anyhow!("unknown condition {name}"))?;
        self.truth(template, spec)
    }

    fn truth(&self, template: &Template, spec: &Value) -> Result<bool> {
        let (function, argument) =
            single_key(spec).ok_or_else(|| anyhow!("bad condition {spec}"))?;
        let items = || argument.as_array().cloned().unwrap_or_default();
        Ok(match function {
            "Fn::Equals" => {
                let items = items();
                let a = self
                    .resolve(items.first().unwrap_or(&Value::Null))
                    .map_err(|e| anyhow!(e))?;
                let b = self
                    .resolve(items.get(1).unwrap_or(&Value::Null))
                    .map_err(|e| anyhow!(e))?;
                a == b
            }
            "Fn::Not" => !self.truth(template, items().first().unwrap_or(&Value::Null))?,
            "Fn::And" => items()
                .iter()
                .map(|c| self.truth(template, c))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .all(|b| b),
            "Fn::Or" => items()
                .iter()
                .map(|c| self.truth(template, c))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .any(|b| b),
            "Condition" => self.condition(template, argument.as_str().unwrap_or_default())?,
            other => bail!("unsupported condition function {other}"),
        })
    }

    /// Resolves every intrinsic function in `value`; `AWS::NoValue` removes the key.
    pub fn resolve(&self, value: &Value) -> Result<Value, ResolveError> {
        Ok(self.resolve_opt(value)?.unwrap_or(Value::Null))
    }

    fn resolve_opt(&self, value: &Value) -> Result<Option<Value>, ResolveError> {
        match value {
            Value::Array(items) => Ok(Some(Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve_opt(v))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
            ))),
            Value::Object(map) => {
                if let Some((function, argument)) = single_key(value) {
                    if function == "Ref" || function.starts_with("Fn::") {
                        return self.intrinsic(function, argument);
                    }
                }
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(resolved) = self.resolve_opt(v)? {
                        out.insert(k.clone(), resolved);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn intrinsic(&self, function: &str, argument: &Value) -> Result<Option<Value>, ResolveError> {
        match function {
            "Ref" => {
                let name = argument
                    .as_str()
                    .ok_or_else(|| ResolveError::bad("Ref", argument))?;
                if name == "AWS::NoValue" {
                    return Ok(None);
                }
                self.values
                    .get(name)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| ResolveError::NotYet(NotYet(name.to_owned())))
            }
            "Fn::GetAtt" => {
                let parts = strings(&self.resolve(argument)?);
                let [resource, attribute] = parts.as_slice() else {
                    return Err(ResolveError::bad("Fn::GetAtt", argument));
                };
                self.attributes
                    .get(&(resource.clone(), attribute.clone()))
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| ResolveError::NotYet(NotYet(format!("{resource}.{attribute}"))))
            }
            "Fn::Sub" => {
                let (text, extra) = match argument {
                    Value::String(s) => (s.clone(), Map::new()),
                    Value::Array(items) if items.len() == 2 => (
                        items[0].as_str().unwrap_or_default().to_owned(),
                        self.resolve(&items[1])?
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    ),
                    _ => return Err(ResolveError::bad("Fn::Sub", argument)),
                };
                self.substitute(&text, &extra)
                    .map(|s| Some(Value::String(s)))
            }
            "Fn::Join" => {
                let items = argument
                    .as_array()
                    .ok_or_else(|| ResolveError::bad("Fn::Join", argument))?;
                let separator = items.first().and_then(Value::as_str).unwrap_or_default();
                let parts = self.resolve(items.get(1).unwrap_or(&Value::Null))?;
                let parts: Vec<String> = parts
                    .as_array()
                    .map(|a| a.iter().map(scalar_text).collect())
                    .unwrap_or_default();
                Ok(Some(Value::String(parts.join(separator))))
            }
            "Fn::Select" => {
                let items = argument
                    .as_array()
                    .ok_or_else(|| ResolveError::bad("Fn::Select", argument))?;
                let index = self.resolve(items.first().unwrap_or(&Value::Null))?;
                let index: usize = scalar_text(&index)
                    .parse()
                    .map_err(|_| ResolveError::bad("Fn::Select", argument))?;
                let list = self.resolve(items.get(1).unwrap_or(&Value::Null))?;
                Ok(list.as_array().and_then(|l| l.get(index)).cloned())
            }
            "Fn::Split" => {
                let items = argument
                    .as_array()
                    .ok_or_else(|| ResolveError::bad("Fn::Split", argument))?;
                let separator = items.first().and_then(Value::as_str).unwrap_or_default();
                let text = scalar_text(&self.resolve(items.get(1).unwrap_or(&Value::Null))?);
                if separator.is_empty() {
                    return Err(ResolveError::bad("Fn::Split", argument));
                }
                Ok(Some(Value::Array(
                    text.split(separator).map(|part| part.into()).collect(),
                )))
            }
            "Fn::If" => {
                let items = argument
                    .as_array()
                    .ok_or_else(|| ResolveError::bad("Fn::If", argument))?;
                let name = items.first().and_then(Value::as_str).unwrap_or_default();
                let truth = *self
                    .conditions
                    .get(name)
                    .ok_or_else(|| ResolveError::bad("Fn::If (unknown condition)", argument))?;
                self.resolve_opt(items.get(if truth { 1 } else { 2 }).unwrap_or(&Value::Null))
            }
            other => Err(ResolveError::Unsupported(other.to_owned())),
        }
    }

    fn substitute(&self, text: &str, extra: &Map<String, Value>) -> Result<String, ResolveError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            if let Some(literal) = after.strip_prefix('!') {
                out.push_str("${");
                rest = literal;
                continue;
            }
            let end = after
                .find('}')
                .ok_or_else(|| ResolveError::bad("Fn::Sub", &Value::String(text.into())))?;
            let name = &after[..end];
            let value = if let Some(v) = extra.get(name) {
                v.clone()
            } else if let Some((resource, attribute)) =
                name.split_once('.').filter(|_| !name.starts_with("AWS::"))
            {
                self.attributes
                    .get(&(resource.to_owned(), attribute.to_owned()))
                    .cloned()
                    .ok_or_else(|| ResolveError::NotYet(NotYet(name.to_owned())))?
            } else {
                self.values
                    .get(name)
                    .cloned()
                    .ok_or_else(|| ResolveError::NotYet(NotYet(name.to_owned())))?
            };
            out.push_str(&scalar_text(&value));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    NotYet(#[from] NotYet),
    #[error("malformed {function}: {argument}")]
    Bad { function: String, argument: String },
    #[error("intrinsic function {0} is not supported by the local stack")]
    Unsupported(String),
}

impl ResolveError {
    fn bad(function: &str, argument: &Value) -> Self {
        ResolveError::Bad {
            function: function.to_owned(),
            argument: argument.to_string(),
        }
    }
}

fn single_key(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    (map.len() == 1).then(|| map.iter().next().map(|(k, v)| (k.as_str(), v)))?
}

pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The strings of a JSON array (none when it is not one).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: { Type: String, Default: dev }
  DistributionId: { Type: String, Default: "" }
Conditions:
  HasDistribution: !Not [!Equals [!Ref DistributionId, ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-${Stage}-q"
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
      Tags: !If [HasDistribution, [x], !Ref AWS::NoValue]
      Joined: !Join ["-", [a, !Ref Stage, "${literal}"]]
      Literal: !Sub "${!NotReplaced}"
"#;

    #[test]
    fn resolves_short_form_intrinsics() {
        let template = Template::parse(TEMPLATE).unwrap();
        let mut scope = Scope::new("landfall", "eu-west-2", "123456789012");
        scope.values.insert("Stage".into(), "dev".into());
        scope.values.insert("DistributionId".into(), "".into());
        scope.evaluate_conditions(&template).unwrap();
        let props = &template.resources["Queue"].properties;
        assert!(
            matches!(scope.resolve(props), Err(ResolveError::NotYet(NotYet(ref n))) if n == "Dlq.Arn")
        );
        scope
            .attributes
            .insert(("Dlq".into(), "Arn".into()), "arn:dlq".into());
        let resolved = scope.resolve(props).unwrap();
        assert_eq!(resolved["QueueName"], "landfall-dev-q");
        assert_eq!(resolved["RedrivePolicy"]["deadLetterTargetArn"], "arn:dlq");
        assert!(
            resolved.get("Tags").is_none(),
            "AWS::NoValue removes the key"
        );
        assert_eq!(resolved["Joined"], "a-dev-${literal}");
        assert_eq!(resolved["Literal"], "${NotReplaced}");
    }
}
