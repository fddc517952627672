// A stand-in for the few k6 v1.1.0 APIs that ../../xk6 uses, declared from the facts in
// reference/k6.md §1 (names and signatures only; no k6 code). go.work puts it in place of
// go.k6.io/k6 inside this repository; it is never published or built into a user's k6.
module go.k6.io/k6

go 1.24
