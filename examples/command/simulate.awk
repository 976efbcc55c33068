# A simulated training run with a known answer, for trying ablate's command trainer on a program
# that is not Python (awk). It trains nothing: it draws a classifier's test accuracy, in percent,
# from a planted response surface plus noise, so that an analysis can be checked against truth.
#
#   awk -f simulate.awk -v width=wide -v warmup=true -v schedule=cosine -v seed=7 \
#       -v epochs=5 -v result=result.json -v epochs_file=epochs.jsonl
#
# The planted surface (what `ablate analyze` should find):
#   accuracy = 80 + 6 [width = wide] + 3 [warmup = true] + 0 [schedule = step] + s + e
# where s ~ Normal(0, 1) is shared by every trial of one seed (as the data order is in real
# training) and e ~ Normal(0, 1.5) is each trial's own.
# Each epoch appends {"epoch": e, "train_loss": ..., "accuracy": ...} to epochs_file; the
# final accuracy goes to result as {"accuracy": ...}. Chance (always the same class) is 10.

function normal(    u) {  # a standard normal draw (Box-Muller)
    u = rand()
    while (u == 0) u = rand()
    return sqrt(-2 * log(u)) * cos(2 * 3.141592653589793 * rand())
}

BEGIN {
    if (result == "" || seed == "") {
        print "simulate.awk: give -v result=FILE and -v seed=N" > "/dev/stderr"
        exit 2
    }
    if (epochs == "") epochs = 5
    srand(seed)
    shared = normal()
    cell = (width == "wide") + 2 * (warmup == "true") + 4 * (schedule == "step")
    srand(seed * 8 + cell)  # a stream of the trial's own
    mean = 80 + 6 * (width == "wide") + 3 * (warmup == "true")
    final = mean + shared + 1.5 * normal()
    for (e = 1; e <= epochs; e++) {
        reached = 1 - exp(-1.5 * e)  # the curve climbs towards the final accuracy
        accuracy = 10 + (final - 10) * reached + 0.5 * normal() * (e < epochs)
        loss = 2.3 * (1 - reached) + 0.2
        if (e == epochs) accuracy = final
        printf "epoch %d/%d: accuracy %.2f\n", e, epochs, accuracy
        if (epochs_file != "")
            printf "{\"epoch\": %d, \"train_loss\": %.4f, \"accuracy\": %.4f}\n", e, loss, accuracy >> epochs_file
    }
    printf "{\"accuracy\": %.4f}\n", final > result
}
