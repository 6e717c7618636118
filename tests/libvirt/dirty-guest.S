/* A multiboot "kernel" that never stops writing to its RAM: one store to every
 * 4 KiB page above 2 MiB, forever, so a live migration of it keeps finding dirty
 * pages.  The number of completed passes is kept at guest-physical 0x1ff000,
 * which shows, after a migration, that the RAM (and the counter) moved.
 * DELAY (assemble with --defsym DELAY=n) spins between pages to slow it down. */
        .code32
        .section .text
        .globl _start

        .align 4
multiboot_header:
        .long 0x1BADB002                    /* magic */
        .long 0x00000003                    /* page-align modules, give memory info */
        .long -(0x1BADB002 + 0x00000003)    /* checksum */

_start:
        cli
        movl 8(%ebx), %ecx                  /* mem_upper: KiB above 1 MiB */
        shll $10, %ecx
        addl $0x100000, %ecx                /* ecx = end of RAM */
        movl $0, 0x1ff000
pass:
        movl $0x200000, %edi
page:
        movl 0x1ff000, %eax
        movl %eax, (%edi)
        movl $DELAY, %edx
spin:
        testl %edx, %edx
        jz next
        decl %edx
        jmp spin
next:
        addl $4096, %edi
        cmpl %ecx, %edi
        jb page
        incl 0x1ff000
        jmp pass
