-- Table- and string-heavy: binary trees, string.format, gmatch, table.concat.
local depth = tonumber(arg and arg[1]) or 15
local function make(d)
  if d == 0 then return {} end
  return { make(d - 1), make(d - 1) }
end
local function check(t)
  if t[1] == nil then return 1 end
  return 1 + check(t[1]) + check(t[2])
end
local long = make(depth)
for d = 4, depth, 2 do
  local iters, sum = 1 << (depth - d + 4), 0
  for _ = 1, iters do sum = sum + check(make(d)) end
  print(string.format("%d trees of depth %d check %d", iters, d, sum))
end
print("long lived", check(long))
local parts = {}
for i = 1, 200000 do
  parts[#parts + 1] = string.format("%d:%x:%s", i, i * 7919, ("x"):rep(i % 13))
end
local text = table.concat(parts, " ")
local words, letters = 0, 0
for w in text:gmatch("%S+") do
  words = words + 1
  letters = letters + #w
end
local counts = {}
for k in text:gmatch("(%d)%d*:") do counts[k] = (counts[k] or 0) + 1 end
local keys = {}
for k in pairs(counts) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do io.write(k, "=", counts[k], " ") end
print()
print(#text, words, letters)
