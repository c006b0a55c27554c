module example.com/libuser

go 1.26

require github.com/fleutan/fleutanbeat v0.0.0

// A checkout of fleutanbeat; a program of your own names a released
// version instead and drops this line.
replace github.com/fleutan/fleutanbeat => ../../../..
