/* ferry-conductor — runs every accepted request as a durable task. */
#include "cond.h"

int main(int argc, char **argv)
{
    return cond_main(argc, argv);
}
