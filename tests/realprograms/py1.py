# A dict of 300k entries, JSON round trip, a word count, and threads that
# build and sort lists of strings concurrently (PYTHONMALLOC=malloc).
import json, random, threading, hashlib
d = {("k%d" % i): [i, str(i) * 3, {"x": i % 7}] for i in range(300000)}
s = json.dumps(d, sort_keys=True)
e = json.loads(s)
print(len(s), len(e), hashlib.md5(s.encode()).hexdigest())
random.seed(1)
words = [random.choice(["alpha", "beta", "gamma", "delta", "eps"]) + str(random.randint(0, 999)) for _ in range(500000)]
counts = {}
for w in words:
    counts[w] = counts.get(w, 0) + 1
print(len(counts), sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
results = [None] * 4
def work(n):
    l = [("%07d" % ((i * 7919 + n) % 1000003)) * 2 for i in range(150000)]
    l.sort()
    results[n] = hashlib.md5("".join(l).encode()).hexdigest()
ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(results)
