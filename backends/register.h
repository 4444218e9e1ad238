/* register: makes the built-in backends known to core's registry and sets the order --backend auto tries. */
#ifndef PN_BACKENDS_REGISTER_H
#define PN_BACKENDS_REGISTER_H

/* Registers every backend compiled into this binary (ref and cpu) and the auto order: the cuda module, cpu, ref.
 * Idempotent. */
void pn_register_builtin_backends(void);

#endif
