-- Argo CD health of an aigate.dev AIWorkload: Healthy only when the gates passed for the spec as it is now,
-- so that a sync wave of workloads after their AIWorkloads waits for the gates.
-- Argo CD runs this in gopher-lua (Lua 5.1) with only the base and table libraries open (no string, no
-- math) unless useOpenLibs is set: plain concatenation and table.concat only.

local gates = {
  {"CostGate", "cost"},
  {"ReliabilityGate", "reliability"},
  {"FallbackGate", "fallback"},
  {"ToolControlGate", "toolControl"},
  {"ProviderDependencyGate", "providerDependency"},
  {"EvidenceGate", "evidence"},
}

local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "AIWorkload is being deleted"}
end

local status = obj.status
if status == nil then
  return {status = "Progressing", message = "Waiting for the aigate operator to gate this workload"}
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  local seen = ""
  if status.observedGeneration ~= nil then
    seen = " (status is of generation " .. text(status.observedGeneration) .. ")"
  end
  return {status = "Progressing", message = "Waiting for the gates to judge generation " .. text(generation) .. seen}
end

local conditions = {}
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type ~= nil then
      conditions[c.type] = c
    end
  end
end
local ready = conditions["Ready"]

if status.phase == "Testing" or status.phase == "Pending" then
  local message = "Gate run in progress"
  if status.lastRun ~= nil and status.lastRun.job ~= nil then
    message = message .. " (Job " .. text(status.lastRun.job) .. ")"
  end
  if ready ~= nil and ready.status == "True" then
    message = message .. "; the current evidence stays valid meanwhile: " .. text(ready.message)
  end
  return {status = "Progressing", message = message}
end

local failed = {}
local accepted = {}
for _, gate in ipairs(gates) do
  local c = conditions[gate[1]]
  if c ~= nil and c.status ~= "True" then
    table.insert(failed, gate[2])
  elseif c ~= nil and c.reason == "RiskAccepted" then
    table.insert(accepted, gate[2])
  end
end

local readyFalse = ready ~= nil and ready.status == "False"
if status.phase == "Error" or status.phase == "Failed" or status.decision == "FAIL" or readyFalse then
  local why = ""
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    why = text(ready.message)
  end
  if status.phase ~= "Error" and #failed > 0 then
    local message = "Gates failed: " .. table.concat(failed, ", ")
    if why ~= "" then
      message = message .. ". " .. why
    end
    return {status = "Degraded", message = message}
  end
  local reason = "GatesFailed"
  if ready ~= nil and ready.reason ~= nil then
    reason = text(ready.reason)
  end
  if why == "" then
    why = "phase " .. text(status.phase) .. ", decision " .. text(status.decision)
  end
  return {status = "Degraded", message = reason .. ": " .. why}
end

if status.decision == "PASS" and ready ~= nil and ready.status == "True" then
  local message = text(ready.message)
  if #accepted > 0 then
    message = message .. "; risk accepted: " .. table.concat(accepted, ", ")
  end
  return {status = "Healthy", message = message}
end

return {status = "Progressing", message = "Waiting for a gate decision"}
