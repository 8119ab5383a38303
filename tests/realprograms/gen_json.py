# Writes about N MiB of deterministic JSON records (argv: N, path).
import sys
n_mib, path = int(sys.argv[1]), sys.argv[2]
cities = ["Lyon", "Oslo", "Quito", "Perth", "Lagos", "Hanoi", "Cusco", "Turku"]
with open(path, "w") as f:
    f.write("[")
    size, i = 1, 0
    while size < n_mib << 20:
        rec = ('{"id":%d,"name":"user%d","score":%d,"tags":["t%d","t%d"],'
               '"addr":{"city":"%s","zip":"%05d"}}'
               % (i, i, (i * 7919) % 1000, i % 17, i % 5, cities[i % 8], (i * 31) % 100000))
        if i:
            f.write(",")
            size += 1
        f.write(rec)
        size += len(rec)
        i += 1
    f.write("]\n")
