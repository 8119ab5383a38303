module gomembench

go 1.19
