"""Writes reproducible, realistic access-log text to stdout: generate.py BYTES [SEED]."""
import random, sys
random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
target = int(sys.argv[1])
methods = ["GET","POST","PUT","DELETE"]
paths = ["/api/v1/items","/api/v1/users","/login","/static/app.js","/health","/api/v2/orders/search"]
agents = ["Mozilla/5.0 (X11; Linux x86_64)","curl/8.4.0","Go-http-client/1.1","python-requests/2.31"]
words = "the quick brown fox jumps over lazy dog error warning timeout retry connection reset upstream cache miss hit".split()
out = sys.stdout.buffer
n = 0
i = 0
while n < target:
    line = '%d.%d.%d.%d - - [21/Nov/2026:05:%02d:%02d +0000] "%s %s?id=%d HTTP/1.1" %d %d "%s" msg="%s"\n' % (
        random.randrange(256), random.randrange(256), random.randrange(256), random.randrange(256), i % 60, (i//60)%60,
        random.choice(methods), random.choice(paths), random.randrange(100000), random.choice([200,200,200,301,404,500]),
        random.randrange(50000), random.choice(agents), " ".join(random.choice(words) for _ in range(random.randrange(3,12))))
    b = line.encode()
    out.write(b); n += len(b); i += 1
