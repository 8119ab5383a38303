# Writes a multi-file C program to directory argv[1]: 4 units of 150 small
# functions each and a main that calls them all and prints a checksum.
import sys, os
d = sys.argv[1]
units, per = 4, 150
for u in range(units):
    with open(os.path.join(d, "u%d.c" % u), "w") as f:
        f.write("#include <string.h>\n")
        for i in range(per):
            f.write("static int tab_%d_%d[%d] = {%s};\n" % (u, i, 8, ",".join(str((u * 31 + i * 7 + k) % 97) for k in range(8))))
            f.write("unsigned long f_%d_%d(unsigned long x) {\n" % (u, i))
            f.write("  char buf[64]; unsigned long s = x;\n")
            f.write("  for (int k = 0; k < 8; k++) s = s * 131 + tab_%d_%d[k] + (s >> %d);\n" % (u, i, 1 + i % 13))
            f.write("  memset(buf, (int)(s & 0x7f), sizeof buf);\n")
            f.write("  for (int k = 0; k < 64; k++) s += (unsigned char)buf[k] * (k + %d);\n" % i)
            f.write("  return s ^ %dUL;\n}\n" % (u * 1000 + i))
with open(os.path.join(d, "main.c"), "w") as f:
    f.write("#include <stdio.h>\n")
    for u in range(units):
        for i in range(per):
            f.write("unsigned long f_%d_%d(unsigned long);\n" % (u, i))
    f.write("int main(void) {\n  unsigned long s = 1;\n")
    for u in range(units):
        for i in range(per):
            f.write("  s = f_%d_%d(s);\n" % (u, i))
    f.write('  printf("%lu\\n", s);\n  return 0;\n}\n')
