/*
 * survival_lib: a shared library that test_survival dlopens at run time. Its
 * one global is the only reference to a gomem object, so the collector must
 * scan the data segments of libraries loaded after start-up.
 */
void *lib_slot;

void lib_set(void *p)
{
    lib_slot = p;
}

void *lib_get(void)
{
    return lib_slot;
}
