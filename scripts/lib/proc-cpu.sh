# shellcheck shell=bash
# CPU readings from /proc for the benches (sourced).

cpu_of() { # pid -> CPU seconds (user + system) the live process has used so far
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

busy_cpu() { # CPU seconds the whole machine has been busy so far (all cores)
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
