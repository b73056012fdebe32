// Tally's formats are little-endian and some encoders copy memory as is (FORMAT.md, "Conventions").
#if _endian(big)
    #error("Tally's on-disk formats are little-endian; big-endian hosts are not supported")
#endif
