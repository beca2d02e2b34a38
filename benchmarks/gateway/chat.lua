-- wrk script for the gateway benchmark: one small non-streaming chat completion per request.
-- MODEL: the `model` field (the logical adapter through the gateway, its served name direct).
-- KEY: the tenant's API key (sent on direct calls too, so both requests are the same size).
local model = os.getenv("MODEL") or "SmolLM2-135M-Instruct"
wrk.method = "POST"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello there"}],'
  .. '"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "none")
