// The local stack's IAM decisions, made by @cloud-copilot/iam-simulate (a maintained
// evaluator of IAM's rules: actions, resource ARNs checked against the action's resource
// types, every condition operator, explicit denies). enforce.py runs one of these per
// moto_server and writes one request per line on stdin:
//   {"principal": "<assumed-role ARN>", "policies": [{"name", "policy"}],
//    "action": "s3:GetObject", "resource": "<ARN>", "context": {"s3:prefix": "…"}}
// and reads one answer per line: {"decision": "Allowed" | "ImplicitlyDenied" |
// "ExplicitlyDenied" | "Invalid", "why": "…", "allowed_by": ["<policy>#<Sid or index>", …]}
// (the statements that allowed it: the IAM mutation check's evidence).
import { runSimulation } from '@cloud-copilot/iam-simulate'
import { createInterface } from 'node:readline'

const ACCOUNT = '123456789012'

async function decide(line) {
  const ask = JSON.parse(line)
  const result = await runSimulation(
    {
      request: {
        principal: ask.principal,
        action: ask.action,
        resource: { resource: ask.resource, accountId: ACCOUNT },
        contextVariables: ask.context ?? {}
      },
      identityPolicies: ask.policies,
      serviceControlPolicies: [],
      resourceControlPolicies: []
    },
    {}
  )
  if (result.resultType === 'error') {
    // A request the evaluator cannot judge (an ARN of the wrong type for the action, a
    // malformed policy) is a defect of the emulation or the template: never an Allow.
    return { decision: 'Invalid', why: JSON.stringify(result.errors) }
  }
  const allowedBy = (result.result?.analysis?.identityAnalysis?.allowStatements ?? []).map(
    (s) => `${s.policyId}#${s.statement.sid() ?? s.statement.index()}`
  )
  return { decision: result.overallResult, why: '', allowed_by: allowedBy }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  let answer
  try {
    answer = await decide(line)
  } catch (error) {
    answer = { decision: 'Invalid', why: String(error) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
